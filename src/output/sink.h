// Where decoded events go. Encoders and writers sit behind this interface.
#pragma once

#include "events/event.h"

namespace ecapture {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called from module threads; implementations are thread-safe.
  virtual void emit(const DataEvent& event) = 0;
  virtual void flush() {}
};

}  // namespace ecapture
