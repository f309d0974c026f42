// Formatting of event fields.
#include "events/event.h"

#include "core/module.h"
#include "core/sink.h"
#include "events/audit_event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace ecapture {

std::string Endpoint::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    ::inet_ntop(AF_INET, addr.data(), buf, sizeof(buf));
    return fmt::format("{}:{}", buf, port);
  }
  if (family == AF_INET6) {
    ::inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
    return fmt::format("[{}]:{}", buf, port);
  }
  return "?";
}

void deliver_audit(ModuleCounters& c, EventSink* sink, const AuditEvent& e) {
  c.events.fetch_add(1);
  c.bytes.fetch_add(e.text.size());
  if (sink != nullptr) sink->emit_audit(e);
}

}  // namespace ecapture
