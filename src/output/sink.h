// Where decoded events go. Encoders and writers sit behind this interface.
#pragma once

#include "events/audit_event.h"
#include "events/event.h"

namespace ecapture {

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
