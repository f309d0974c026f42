// EventSink that renders events as text and writes them to a stream (stdout by default).
#pragma once

#include <cstdio>
#include <mutex>

#include "core/sink.h"
#include "events/audit_event.h"
#include "events/event.h"
#include "output/audit_text.h"
#include "output/text_encoder.h"

namespace ecapture {

class TextSink : public EventSink {
 public:
  explicit TextSink(TextOptions options, std::FILE* out = stdout)
      : options_(options), out_(out) {}
  void emit(const DataEvent& event) override;
  void emit_audit(const AuditEvent& event) override;
  void flush() override;
  void set_options(TextOptions options);

 private:
  std::mutex mu_;
  TextOptions options_;
  std::FILE* out_;
};

}  // namespace ecapture
