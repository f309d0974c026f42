// Kafka keys and headers of messages and audit records.
#include "output/record_key.h"

#include <fmt/format.h>

#include "core/host_id.h"
#include "output/encoders.h"

namespace ecapture {

std::string connection_key(std::string_view host, uint32_t pid, int32_t fd, const Endpoint& local,
                           const Endpoint& peer) {
  return fmt::format("{}/{}/{}/{}/{}", host, pid, fd, local.to_string(), peer.to_string());
}

RecordMeta record_meta(const Message& m) {
  const DataEvent& e = m.event;
  // src is the local end of a WRITE and the peer of a READ (events/event.h).
  const bool write = e.direction == Direction::kWrite;
  const Endpoint& local = write ? e.src : e.dst;
  const Endpoint& peer = write ? e.dst : e.src;
  return RecordMeta{connection_key(host_id(), e.pid, e.fd, local, peer), e.source, e.pid};
}

RecordMeta record_meta(const AuditEvent& e) {
  std::string module = audit_module(e);
  std::string key = fmt::format("{}/{}/{}", host_id(), e.pid, module);
  return RecordMeta{std::move(key), std::move(module), e.pid};
}

}  // namespace ecapture
