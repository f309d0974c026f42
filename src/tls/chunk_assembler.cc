// Decoding of the TLS data records and reassembly of chunked calls.
#include "tls/chunk_assembler.h"

#include <sys/socket.h>

#include <cstring>
#include <ctime>

#include "bpf/record.h"

namespace ecapture::tls {

static_assert(sizeof(tls_data_event) == 120 && offsetof(tls_data_event, cgroup_id) == 112,
              "ABI: tls_data_event size, cgroup_id offset");
static_assert(offsetof(tls_data_event, kind) == 0 && offsetof(tls_data_event, timestamp_ns) == 8,
              "ABI: kind offset, timestamp offset");
static_assert(offsetof(tls_data_event, data_len) == 52 && offsetof(tls_data_event, comm) == 56,
              "ABI: data_len offset, comm offset");
static_assert(offsetof(tls_data_event, tuple) == 72 && sizeof(ecap_sock_tuple) == 40,
              "ABI: tuple offset, ecap_sock_tuple size");

void tuple_to_endpoints(const ecap_sock_tuple& t, Direction dir, Endpoint* src, Endpoint* dst) {
  *src = Endpoint{};
  *dst = Endpoint{};
  if (t.family != AF_INET && t.family != AF_INET6) return;
  Endpoint local, remote;
  local.family = remote.family = t.family;
  size_t n = t.family == AF_INET ? 4 : 16;
  std::memcpy(local.addr.data(), t.laddr, n);
  std::memcpy(remote.addr.data(), t.raddr, n);
  local.port = t.lport;
  remote.port = t.rport;
  if (dir == Direction::kWrite) {
    *src = local;
    *dst = remote;
  } else {
    *src = remote;
    *dst = local;
  }
}

Result<void> ChunkAssembler::add(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(const tls_data_event h, bpf::read_struct<tls_data_event>(record, "tls"));
  ASSIGN_OR_RETURN(const std::span<const uint8_t> payload,
                   bpf::payload_after<tls_data_event>(record, h.data_len, TLS_CHUNK, "tls"));
  const char* data = reinterpret_cast<const char*>(payload.data());
  if (h.kind == TLS_RECORD_CONN) {
    add_conn(h);
    return {};
  }

  auto it = pending_.find(h.tid);
  if (h.offset == 0 || it == pending_.end() || it->second.conn_id != h.conn_id) {
    if (it != pending_.end()) {  // the previous call of this thread lost its tail
      complete(std::move(it->second));
      pending_.erase(it);
    }
    Pending p;
    p.conn_id = h.conn_id;
    p.mono_ns = h.timestamp_ns;
    DataEvent& e = p.event;
    e.timestamp_ns = static_cast<uint64_t>(static_cast<int64_t>(h.timestamp_ns) + mono_to_wall_ns_);
    e.pid = h.pid;
    e.tid = h.tid;
    e.uid = h.uid;
    e.comm.assign(h.comm, strnlen(h.comm, sizeof(h.comm)));
    e.fd = h.fd;
    e.direction = h.direction == ECAP_DIR_WRITE ? Direction::kWrite : Direction::kRead;
    // A socket read after the peer closed may have lost its local port already: keep the
    // connection's last complete tuple for the same fd.
    ecap_sock_tuple tuple = h.tuple;
    const uint64_t key = conn_key(h.pid, h.conn_id);
    if (tuple.family != 0 && tuple.lport != 0 && tuple.rport != 0) {
      if (h.fd >= 0) {
        conns_[key] = ConnInfo{h.fd, tuple};
        if (conns_.size() > 65536) conns_.clear();  // bounded
      }
    } else if (auto c = conns_.find(key); c != conns_.end() && c->second.fd == h.fd) {
      tuple = c->second.tuple;
    }
    tuple_to_endpoints(tuple, e.direction, &e.src, &e.dst);
    e.length = h.total_len;
    e.source = "openssl";
    e.conn_id = h.conn_id;
    e.cgroup = CgroupResolver::host().lookup(h.cgroup_id);
    e.payload.reserve(static_cast<size_t>(std::min<uint64_t>(h.total_len, 64ull << 20)));
    it = pending_.emplace(h.tid, std::move(p)).first;
  }
  Pending& p = it->second;
  p.event.payload.append(data, h.data_len);
  p.received = h.offset + h.data_len;
  if (p.received >= p.event.length) {
    complete(std::move(p));
    pending_.erase(it);
  }
  return {};
}

void ChunkAssembler::apply(const ConnInfo& info, DataEvent& e) const {
  e.fd = info.fd;
  tuple_to_endpoints(info.tuple, e.direction, &e.src, &e.dst);
}

void ChunkAssembler::complete(Pending&& p) {
  if (p.event.fd >= 0) {
    // Calls of this connection still held come first: a connection's data never reorders.
    if (!held_.empty()) release_held(conn_key(p.event.pid, p.conn_id), p.event);
    emit_(std::move(p.event));
    return;
  }
  if (auto c = conns_.find(conn_key(p.event.pid, p.conn_id)); c != conns_.end()) {
    apply(c->second, p.event);
    emit_(std::move(p.event));
    return;
  }
  held_.push_back(std::move(p));
}

void ChunkAssembler::release_held(uint64_t key, const DataEvent& known) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (conn_key(it->event.pid, it->conn_id) == key) {
      it->event.fd = known.fd;
      const bool same_dir = it->event.direction == known.direction;
      it->event.src = same_dir ? known.src : known.dst;
      it->event.dst = same_dir ? known.dst : known.src;
      emit_(std::move(it->event));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

void ChunkAssembler::add_conn(const tls_data_event& h) {
  ConnInfo info{h.fd, h.tuple};
  const uint64_t key = conn_key(h.pid, h.conn_id);
  conns_[key] = info;
  if (conns_.size() > 65536) conns_.clear();  // bounded; entries are only a fallback
  // Release, in order, the held calls of this connection.
  for (auto it = held_.begin(); it != held_.end();) {
    if (conn_key(it->event.pid, it->conn_id) == key) {
      apply(info, it->event);
      emit_(std::move(it->event));
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

void ChunkAssembler::tick(uint64_t now_mono_ns) {
  while (!held_.empty() && held_.front().mono_ns + kHoldNs <= now_mono_ns) {
    emit_(std::move(held_.front().event));
    held_.pop_front();
  }
}

void ChunkAssembler::flush() {
  for (auto& [tid, p] : pending_) complete(std::move(p));
  pending_.clear();
  for (auto& p : held_) emit_(std::move(p.event));
  held_.clear();
}

}  // namespace ecapture::tls
