// The name this host gives its events (JSON "host", protobuf LogEntry.host, Kafka keys): the
// hostname, or --host-id, so that a fleet's events stay apart in one pipeline.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ecapture {

// Checks a --host-id value: 1-253 printable characters, no '/' (it separates the Kafka key's
// parts) and no whitespace.
Result<void> validate_host_id(std::string_view id);
// Sets the process-wide host id; empty means the hostname. Call before any event is encoded.
void set_host_id(std::string id);
// The host id (the hostname when none was set, "unknown" if gethostname fails).
const std::string& host_id();

}  // namespace ecapture
