// Host, Origin and Content-Type checks of the API and the web view.
#include "api/request_guard.h"

#include <arpa/inet.h>
#include <strings.h>

#include <fmt/format.h>

namespace ecapture::api {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool is_ip_literal(std::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
    in6_addr a6{};
    return inet_pton(AF_INET6, h.substr(1, h.size() - 2).c_str(), &a6) == 1;
  }
  in_addr a4{};
  return inet_pton(AF_INET, h.c_str(), &a4) == 1;
}

// "name:port" → name and port; a bare name means port 80.
bool split_host(std::string_view value, std::string_view& name, uint16_t& port) {
  size_t colon = value.rfind(':');
  if (colon != std::string_view::npos && value.find(']', colon) == std::string_view::npos) {
    name = value.substr(0, colon);
    std::string_view digits = value.substr(colon + 1);
    if (digits.empty() || digits.size() > 5) return false;
    unsigned p = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p == 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } else {
    name = value;
    port = 80;
  }
  return !name.empty();
}

bool host_allowed(std::string_view value, const ListenAddress& listen, uint16_t port) {
  std::string_view name;
  uint16_t p = 0;
  if (!split_host(value, name, p) || p != port) return false;
  if (is_ip_literal(name) || iequals(name, "localhost")) return true;
  std::string_view listen_host = listen.host;
  return !listen_host.empty() && iequals(name, listen_host);
}

}  // namespace

std::optional<GuardRefusal> check_request(const GuardedRequest& r, const ListenAddress& listen,
                                          uint16_t port) {
  if (r.has_host && !host_allowed(r.host, listen, port)) {
    return GuardRefusal{403, fmt::format("refused: Host '{}' does not name this server (a "
                                         "foreign name is how DNS rebinding reaches it)",
                                         r.host)};
  }
  if (r.has_origin) {
    bool same = r.has_host && r.origin.size() == 7 + r.host.size() &&
                iequals(r.origin.substr(0, 7), "http://") && iequals(r.origin.substr(7), r.host);
    if (!same) {
      return GuardRefusal{403, fmt::format("refused: cross-origin request from '{}'", r.origin)};
    }
  }
  if (iequals(r.method, "POST")) {
    std::string_view ct = r.content_type;
    size_t semi = ct.find(';');
    std::string_view type = ct.substr(0, semi);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    if (!iequals(type, "application/json")) {
      return GuardRefusal{415, "POST needs 'Content-Type: application/json'"};
    }
  }
  return std::nullopt;
}

}  // namespace ecapture::api
