// Shared pieces of the per-direction protocol parsers: limits, the output callback, sniffing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "events/message.h"

namespace ecapture {

struct ParserLimits {
  size_t max_message = 8u << 20;   // a message buffered beyond this is emitted and then streamed
  size_t max_decoded = 32u << 20;  // decompressed body cap
  size_t max_head = 64u << 10;     // HTTP/1 start line + headers, HTTP/2 header block
  size_t max_frame = 1u << 20;     // HTTP/2 frame payload accepted
};

using MessageOut = std::function<void(Message&&)>;

// State both directions of one connection share.
struct ConnShared {
  std::deque<std::string> request_methods;  // HTTP/1 requests not yet answered (for HEAD)
  bool http2 = false;                       // one direction spoke HTTP/2
};

enum class Sniff { kNeedMore, kOther, kHttp1Request, kHttp1Response, kHttp2Preface, kHttp2Frame };

// What the first bytes of a message are. `http2_conn` accepts any plausible frame header.
Sniff sniff(std::string_view data, bool http2_conn);

inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Empties a buffer and gives its memory back when it grew large: a connection's parser lives
// until the connection expires (minutes), long after its big message went out, and thousands of
// idle connections each keeping a multi-MiB capacity add up to gigabytes.
inline void release_buffer(std::string& s, size_t keep = size_t{64} << 10) {
  if (s.capacity() > keep) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

// The DataEvent's metadata without its payload.
DataEvent meta_of(const DataEvent& e);

// A raw message of `bytes` with the metadata of `meta` (length = bytes.size() + lost).
Message raw_message(const DataEvent& meta, std::string bytes, uint64_t lost = 0);

}  // namespace ecapture
