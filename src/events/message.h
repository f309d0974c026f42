// A finished unit of output: one reassembled, possibly parsed message of one connection direction.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "events/event.h"

namespace ecapture {

// eCaptureQ's parser type ids (ecaptureq.proto Event.type) double as our protocol tags.
enum class Protocol : uint8_t {
  kRaw = 0,
  kHttp1Request = 1,
  kHttp2Request = 2,
  kHttp1Response = 3,
  kHttp2Response = 4,
};

const char* protocol_name(Protocol p);  // "raw", "HTTP/1.1", "HTTP/2"
bool is_request(Protocol p);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpInfo {
  std::string version;  // "HTTP/1.1", "HTTP/2"
  std::string method;   // requests
  std::string path;     // requests
  std::string authority;  // Host / :authority
  int status = 0;       // responses
  HeaderList headers;   // as sent (HTTP/2 pseudo-headers included)
  std::string content_encoding;  // the one that was decoded ("" when none)
  bool body_decoded = false;     // payload body differs from the wire (chunked or compressed)
  bool partial = false;          // cut by an idle flush, a size limit or shutdown
};

struct Message {
  // Metadata of the first call that contributed. `event.payload` holds the rendered bytes
  // (raw bytes, or start line + headers + decoded body) and `event.length` their full size;
  // payload is shorter when --tsize cut it or chunks were lost.
  DataEvent event;
  Protocol proto = Protocol::kRaw;
  uint32_t stream_id = 0;     // HTTP/2
  uint64_t wire_bytes = 0;    // bytes this message took on the connection
  HttpInfo http;              // for HTTP protocols
};

// "<pid>_<tid>_<comm>_<fd>_<dir>_<src>-<dst>" (eCapture's uuid scheme, v1 §3.3).
std::string message_uuid(const Message& m);

}  // namespace ecapture
