// Message keys and headers for keyed transports (Kafka): one connection's messages share a key,
// so they land in one partition and keep their order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "events/audit_event.h"
#include "events/message.h"
#include "output/writers.h"

namespace ecapture {

// "<host>/<pid>/<fd>/<local>/<peer>", e.g. "web-1/4242/7/127.0.0.1:51234/127.0.0.1:443". The
// same for both directions of a connection.
std::string connection_key(std::string_view host, uint32_t pid, int32_t fd, const Endpoint& local,
                           const Endpoint& peer);
// A data message: its connection's key. The host is host_id().
RecordMeta record_meta(const Message& m);
// An audit record (a shell command, an SQL statement): "<host>/<pid>/<module>".
RecordMeta record_meta(const AuditEvent& e);

}  // namespace ecapture
