// libFuzzer target: the per-direction stream decoder (HTTP/1, HTTP/2 with HPACK, raw fallback).
// The first input byte picks how the rest is cut into calls, so splits are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "events/stream_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ecapture::ConnShared shared;
  ecapture::ParserLimits limits;
  limits.max_message = 4096;  // reach the streaming paths with small inputs
  limits.max_head = 2048;
  size_t out_bytes = 0;
  ecapture::StreamDecoder d(limits, &shared,
                            [&](ecapture::Message&& m) { out_bytes += m.event.payload.size(); });
  size_t step = 1 + data[0] % 97;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
#ifdef ECAP_FUZZ_HTTP2
  // Start as the client side of an HTTP/2 connection.
  std::string preface(ecapture::kHttp2Preface);
  ecapture::DataEvent first;
  first.payload = preface;
  first.length = preface.size();
  d.feed(first, false);
#endif
  while (!rest.empty()) {
    ecapture::DataEvent e;
    e.payload.assign(rest.substr(0, step));
    e.length = e.payload.size() + (data[0] & 0x80 && rest.size() < step ? 1 : 0);
    rest.remove_prefix(std::min(step, rest.size()));
    d.feed(e, false);
  }
  d.flush();
  return 0;
}
