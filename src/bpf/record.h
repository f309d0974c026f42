// Reading a kernel record's fixed header (and the payload that follows it) with the size checks
// every decoder needs; the errors name the record kind.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "core/result.h"

namespace ecapture::bpf {

// The header `T` at the start of `record`.
template <typename T>
Result<T> read_struct(std::span<const uint8_t> record, std::string_view what) {
  if (record.size() < sizeof(T)) {
    return make_error("short {} record: {} bytes, the header alone is {}", what, record.size(),
                      sizeof(T));
  }
  T v;
  std::memcpy(&v, record.data(), sizeof(T));
  return v;
}

// The `len` bytes after the header `T`, when the record holds them (and `len` <= `max`).
template <typename T>
Result<std::span<const uint8_t>> payload_after(std::span<const uint8_t> record, uint64_t len,
                                               uint64_t max, std::string_view what) {
  if (len > max || sizeof(T) + len > record.size()) {
    return make_error("malformed {} record: data_len {} in a {}-byte record", what, len,
                      record.size());
  }
  return record.subspan(sizeof(T), static_cast<size_t>(len));
}

}  // namespace ecapture::bpf
