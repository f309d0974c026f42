// The API's --listen address: parsing, the loopback test and the token rule.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ecapture::api {

struct ListenAddress {
  std::string host;  // as given ("127.0.0.1", "localhost", "::1"); "0.0.0.0" when left empty
  uint16_t port = 0;
  bool loopback = false;  // reachable from this host only

  std::string to_string() const;
};

// "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all interfaces). Loopback: 127.0.0.0/8, ::1, localhost.
Result<ListenAddress> parse_listen_address(std::string_view text);

// Binding anything but loopback without a token would hand the capture configuration (and so
// the traffic of this host) to the network: refused.
Result<void> check_listen_policy(const ListenAddress& addr, const std::string& token);

// Whether an Authorization header carries `Bearer <token>` (constant-time compare).
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace ecapture::api
