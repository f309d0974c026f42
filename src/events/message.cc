// Message helpers.
#include "events/message.h"

#include <fmt/format.h>

namespace ecapture {

const char* protocol_name(Protocol p) {
  switch (p) {
    case Protocol::kHttp1Request:
    case Protocol::kHttp1Response:
      return "HTTP/1.1";
    case Protocol::kHttp2Request:
    case Protocol::kHttp2Response:
      return "HTTP/2";
    case Protocol::kRaw:
      break;
  }
  return "raw";
}

bool is_request(Protocol p) {
  return p == Protocol::kHttp1Request || p == Protocol::kHttp2Request;
}

std::string message_uuid(const Message& m) {
  const DataEvent& e = m.event;
  return fmt::format("{}_{}_{}_{}_{}_{}-{}", e.pid, e.tid, e.comm, e.fd,
                     e.direction == Direction::kRead ? 0 : 1, e.src.to_string(),
                     e.dst.to_string());
}

}  // namespace ecapture
