// The request guard of the API and the web view (issue 17): a browser page of another site, or
// a DNS-rebound name, must not reach the capture. Pure checks on request headers, independent of
// the HTTP library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/listen_address.h"

namespace ecapture::api {

struct GuardRefusal {
  int http_status;  // 403, 415
  std::string message;
};

struct GuardedRequest {
  std::string_view method;
  std::string_view host;          // Host header ("" when absent)
  std::string_view origin;        // Origin header ("" when absent)
  std::string_view content_type;  // Content-Type header
  bool has_host = false;
  bool has_origin = false;
};

// Host must name this server by an IP literal, "localhost" or the --listen host, with its port
// (a DNS-rebound attacker's name is refused); a present Origin must be this very origin
// (http://<Host>); a POST must carry Content-Type: application/json (what no HTML form or
// "simple" cross-site request can send).
std::optional<GuardRefusal> check_request(const GuardedRequest& r, const ListenAddress& listen,
                                          uint16_t port);

}  // namespace ecapture::api
