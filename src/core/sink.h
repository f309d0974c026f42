// Where decoded events go: the interface between modules and the outputs (encoders and writers
// sit behind it). The event types are declared only, so that core includes no other folder.
#pragma once

namespace ecapture {

struct DataEvent;
struct AuditEvent;

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called from module threads; implementations are thread-safe.
  virtual void emit(const DataEvent& event) = 0;
  // Audit records (shell commands, SQL statements). Sinks that do not render them drop them.
  virtual void emit_audit(const AuditEvent& /*event*/) {}
  virtual void flush() {}
};

}  // namespace ecapture
