// The identity of one connection as user space sees it: both directions of a connection meet
// under one key (local and remote ends, not src and dst). Used by the EventProcessor and by the
// web view's exchange pairing.
#pragma once

#include <cstddef>
#include <cstdint>

#include "events/event.h"

namespace ecapture {

struct ConnKey {
  uint32_t pid;
  uint64_t conn_id;  // the library's connection object, 0 when unknown
  int32_t fd;
  uint16_t local_port, remote_port;
  bool operator==(const ConnKey&) const = default;
};

struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const {
    uint64_t h = k.conn_id * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t{k.pid} << 32) ^ static_cast<uint32_t>(k.fd);
    h ^= (uint64_t{k.local_port} << 16 | k.remote_port) * 0xff51afd7ed558ccdull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

inline ConnKey conn_key_of(const DataEvent& e) {
  // The local end is the source of what we write and the destination of what we read.
  const Endpoint& local = e.direction == Direction::kWrite ? e.src : e.dst;
  const Endpoint& remote = e.direction == Direction::kWrite ? e.dst : e.src;
  return ConnKey{e.pid, e.conn_id, e.fd, local.port, remote.port};
}

}  // namespace ecapture
