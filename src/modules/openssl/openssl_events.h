// Decoding of the OpenSSL module's kernel records and reassembly of chunked calls.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>

#include "core/result.h"
#include "events/event.h"
#include "modules/openssl/openssl_abi.h"

namespace ecapture::openssl {

// Turns a kernel tuple into src/dst endpoints for the given direction.
void tuple_to_endpoints(const ecap_sock_tuple& t, Direction dir, Endpoint* src, Endpoint* dst);

// Collects the chunks of each call (keyed by thread) and emits one DataEvent per call when the
// last chunk arrives. A call whose chunks were partly lost is emitted with what arrived when the
// thread's next call starts or at flush.
//
// Calls whose socket was not yet known (fd -1: memory-BIO libraries such as node's) are held
// until the kernel reports the connection (an TLS_RECORD_CONN record) or kHoldNs passes.
class ChunkAssembler {
 public:
  using Emit = std::function<void(DataEvent&&)>;
  // `mono_to_wall_ns` is added to the kernel's CLOCK_MONOTONIC timestamps.
  ChunkAssembler(int64_t mono_to_wall_ns, Emit emit)
      : mono_to_wall_ns_(mono_to_wall_ns), emit_(std::move(emit)) {}

  static constexpr uint64_t kHoldNs = 200'000'000;

  // One record from the event map. Malformed records are an error (and dropped).
  Result<void> add(std::span<const uint8_t> record);
  // Releases held calls older than kHoldNs at `now_mono_ns` (CLOCK_MONOTONIC).
  void tick(uint64_t now_mono_ns);
  // Emits every incomplete and held call (shutdown).
  void flush();
  size_t pending() const { return pending_.size(); }
  size_t held() const { return held_.size(); }

 private:
  struct Pending {
    DataEvent event;
    uint64_t conn_id = 0;
    uint64_t received = 0;
    uint64_t mono_ns = 0;
  };
  struct ConnInfo {
    int32_t fd;
    ecap_sock_tuple tuple;
  };
  static uint64_t conn_key(uint32_t pid, uint64_t conn_id) {
    return conn_id ^ (static_cast<uint64_t>(pid) << 48);
  }
  void complete(Pending&& p);
  void add_conn(const tls_data_event& h);
  // Emits the held calls of connection `key`, in order, with the fd and endpoints of `known`.
  void release_held(uint64_t key, const DataEvent& known);
  void apply(const ConnInfo& info, DataEvent& e) const;

  int64_t mono_to_wall_ns_;
  Emit emit_;
  std::unordered_map<uint32_t, Pending> pending_;  // by tid
  std::deque<Pending> held_;                        // waiting for their connection, in order
  std::unordered_map<uint64_t, ConnInfo> conns_;    // late-resolved connections
};


}  // namespace ecapture::openssl
