// The ws://host:port/path client writer (--eventaddr, --logaddr): pure parts, testable without a
// network. The writer itself is made by make_ws_client_writer (output/writers.h).
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace ecapture {

struct WsUrl {
  std::string host;  // without IPv6 brackets
  std::string port;  // decimal, 1..65535
  std::string path;  // starts with '/'; "/" when the URL has none
  // The URI handed to the WebSocket library: ws://host:port/path ([host] for IPv6).
  std::string uri() const;
};

// Accepts ws://host:port[/path]. wss:// is refused with a one-line reason (no TLS client); any
// other scheme, a missing host or port, a port outside 1..65535 and whitespace or control
// characters are errors that start with the URL.
Result<WsUrl> parse_ws_url(std::string_view url);

}  // namespace ecapture
