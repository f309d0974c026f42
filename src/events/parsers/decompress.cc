// Content-Encoding decoders over zlib, brotli and zstd.
#include "events/parsers/decompress.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <vector>

namespace ecapture {
namespace {

std::string lower_trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// window_bits: 15+32 auto-detects zlib or gzip headers; -15 is a raw deflate stream.
std::optional<std::string> inflate_zlib(std::string_view data, int window_bits, size_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, window_bits) != Z_OK) return std::nullopt;
  std::string out;
  char buf[16384];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > max_out) {
      rc = Z_MEM_ERROR;
      break;
    }
    // gzip allows several members back to back.
    if (rc == Z_STREAM_END && zs.avail_in > 0 && window_bits > 15) {
      if (inflateReset(&zs) != Z_OK) break;
      rc = Z_OK;
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) break;  // input ended early
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

std::optional<std::string> decode_deflate(std::string_view data, size_t max_out) {
  // "deflate" is meant to be zlib-wrapped, but some servers send a raw stream.
  if (auto r = inflate_zlib(data, 15, max_out)) return r;
  return inflate_zlib(data, -15, max_out);
}

std::optional<std::string> decode_brotli(std::string_view data, size_t max_out) {
  BrotliDecoderState* st = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  if (st == nullptr) return std::nullopt;
  std::string out;
  size_t avail_in = data.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(data.data());
  uint8_t buf[16384];
  BrotliDecoderResult rc;
  do {
    size_t avail_out = sizeof(buf);
    uint8_t* next_out = buf;
    rc = BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.append(reinterpret_cast<char*>(buf), sizeof(buf) - avail_out);
    if (out.size() > max_out) {
      rc = BROTLI_DECODER_RESULT_ERROR;
      break;
    }
  } while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
  BrotliDecoderDestroyInstance(st);
  if (rc != BROTLI_DECODER_RESULT_SUCCESS) return std::nullopt;
  return out;
}

std::optional<std::string> decode_zstd(std::string_view data, size_t max_out) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (ds == nullptr) return std::nullopt;
  ZSTD_initDStream(ds);
  std::string out;
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::vector<char> buf(ZSTD_DStreamOutSize());
  size_t rc = 1;
  bool ok = true;
  while (in.pos < in.size || rc != 0) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    size_t before = in.pos;
    rc = ZSTD_decompressStream(ds, &ob, &in);
    if (ZSTD_isError(rc)) {
      ok = false;
      break;
    }
    out.append(buf.data(), ob.pos);
    if (out.size() > max_out) {
      ok = false;
      break;
    }
    if (in.pos == before && ob.pos == 0) {  // no progress: truncated frame
      ok = rc == 0;
      break;
    }
  }
  ZSTD_freeDStream(ds);
  if (!ok || rc != 0) return std::nullopt;
  return out;
}

}  // namespace

std::optional<std::string> decode_content(std::string_view encoding, std::string_view data,
                                          size_t max_out) {
  std::vector<std::string> codings;
  size_t start = 0;
  while (start <= encoding.size()) {
    size_t comma = encoding.find(',', start);
    if (comma == std::string_view::npos) comma = encoding.size();
    std::string c = lower_trim(encoding.substr(start, comma - start));
    if (!c.empty() && c != "identity") codings.push_back(std::move(c));
    start = comma + 1;
  }
  std::string cur(data);
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    std::optional<std::string> next;
    if (*it == "gzip" || *it == "x-gzip") {
      next = inflate_zlib(cur, 15 + 32, max_out);
    } else if (*it == "deflate") {
      next = decode_deflate(cur, max_out);
    } else if (*it == "br") {
      next = decode_brotli(cur, max_out);
    } else if (*it == "zstd") {
      next = decode_zstd(cur, max_out);
    }
    if (!next) return std::nullopt;
    cur = std::move(*next);
  }
  return cur;
}

}  // namespace ecapture
