// A MessageSink that hands every message and audit record to two others (the writers' router and
// a tap such as the web view).
#pragma once

#include "events/event_processor.h"

namespace ecapture {

// Sends every message and audit record to `a`, then to `b`.
class TeeSink : public MessageSink {
 public:
  TeeSink(MessageSink* a, MessageSink* b) : a_(a), b_(b) {}
  void write(const Message& m) override {
    a_->write(m);
    b_->write(m);
  }
  void write_audit(const AuditEvent& e) override {
    a_->write_audit(e);
    b_->write_audit(e);
  }
  void flush() override {
    a_->flush();
    b_->flush();
  }

 private:
  MessageSink* a_;
  MessageSink* b_;
};

}  // namespace ecapture
