// Test helper: zlib compression of test bodies (gzip by default, raw deflate or zlib by window).
#pragma once

#include <zlib.h>

#include <string>

namespace ecapture::test_util {

inline std::string gzip(const std::string& in, int window_bits = 15 + 16) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace ecapture::test_util
