// libFuzzer target: Content-Encoding decoding (gzip, deflate, br, zstd and chains). Whatever the
// input, the output never exceeds the limit it was given: a bomb is refused, not inflated.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string_view>

#include "events/parsers/decompress.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static constexpr std::string_view kEncodings[] = {
      "gzip", "deflate", "br", "zstd", "x-gzip", "gzip, br", "br, zstd", "identity, gzip",
      "deflate, deflate", "zstd, gzip, br", "GZIP ", "compress"};
  if (size == 0) return 0;
  const std::string_view encoding = kEncodings[data[0] % std::size(kEncodings)];
  const size_t limit = (data[0] & 0x80) ? 1024 : 256 * 1024;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto out = ecapture::decode_content(encoding, body, limit);
  if (out && out->size() > limit) std::abort();
  return 0;
}
