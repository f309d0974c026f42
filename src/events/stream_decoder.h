// One direction of one connection: decides the protocol from the first bytes and feeds the
// matching parser; anything that is not HTTP/1 or HTTP/2 goes out raw, one message per call.
#pragma once

#include <memory>
#include <string>

#include "events/parsers/http1.h"
#include "events/parsers/http2.h"
#include "events/parsers/parser.h"

namespace ecapture {

class StreamDecoder {
 public:
  StreamDecoder(const ParserLimits& limits, ConnShared* shared, MessageOut out)
      : limits_(limits), shared_(shared), out_(std::move(out)) {}

  // One call's bytes. `gap` says data was lost before or inside this call: the parsers cannot
  // trust their position any more, so what they hold is emitted and this call goes out raw.
  void feed(const DataEvent& e, bool gap);
  // Idle timeout: emit what is buffered (parsers keep their connection state).
  void flush();
  size_t buffered() const;

 private:
  enum class Mode { kDetect, kHttp1, kHttp2 };
  void dispatch(const DataEvent& meta, std::string_view data);

  ParserLimits limits_;
  ConnShared* shared_;
  MessageOut out_;
  Mode mode_ = Mode::kDetect;
  std::string detect_;  // undecided first bytes
  DataEvent detect_meta_;
  std::unique_ptr<Http1Parser> h1_;
  std::unique_ptr<Http2Parser> h2_;
};

}  // namespace ecapture
