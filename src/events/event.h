// Decoded events as user space sees them, independent of the module that produced them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "core/cgroup.h"

namespace ecapture {

// One end of a connection. family 0 means unknown (the socket could not be resolved).
struct Endpoint {
  uint16_t family = 0;  // AF_INET, AF_INET6 or 0
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;

  bool known() const { return family != 0; }
  std::string to_string() const;  // "127.0.0.1:443", "[::1]:443" or "?"
};

enum class Direction : uint8_t { kRead = 0, kWrite = 1 };

inline const char* to_string(Direction d) { return d == Direction::kRead ? "READ" : "WRITE"; }

// Plaintext moved by one library call (SSL_read, SSL_write, ...), reassembled from its chunks.
struct DataEvent {
  uint64_t timestamp_ns = 0;  // wall clock, ns since the epoch
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint32_t uid = 0;
  std::string comm;
  int32_t fd = -1;
  Direction direction = Direction::kRead;
  Endpoint src;  // for WRITE the local end, for READ the peer
  Endpoint dst;
  uint64_t length = 0;  // bytes the call moved
  std::string payload;  // the bytes captured (== length unless chunks were lost)
  std::string source;   // module that produced it, e.g. "openssl"
  uint64_t conn_id = 0;  // the library's connection object (e.g. the SSL*), 0 when unknown
  std::shared_ptr<const CgroupInfo> cgroup;  // the process's cgroup; null when unknown
};

}  // namespace ecapture
