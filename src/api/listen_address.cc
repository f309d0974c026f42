// --listen parsing and the token rule for non-loopback addresses.
#include "api/listen_address.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cctype>
#include <charconv>

namespace ecapture::api {

std::string ListenAddress::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

namespace {
bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;  // any other name may resolve to anything
}
}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid --listen address '{}': {} (e.g. 127.0.0.1:28256)", text, why);
  };
  ListenAddress a;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPv6]:PORT");
    }
    a.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT");
    a.host = std::string(text.substr(0, colon));
    if (a.host.find(':') != std::string::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("the port must be a number 0..65535");
  }
  a.port = static_cast<uint16_t>(port);
  if (a.host.empty()) a.host = "0.0.0.0";
  a.loopback = is_loopback_host(a.host);
  return a;
}

Result<void> check_listen_policy(const ListenAddress& addr, const std::string& token) {
  if (addr.loopback || !token.empty()) return {};
  return make_error("--listen {} is not a loopback address: the configuration API would be open "
                    "to the network; give a token with --listen-token TOKEN (or "
                    "ECAPTURE_LISTEN_TOKEN) that clients send as 'Authorization: Bearer TOKEN', "
                    "or listen on 127.0.0.1", addr.to_string());
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  // Digests of equal size compared with CRYPTO_memcmp: the time tells neither the token's
  // length nor how many leading bytes matched.
  std::string_view given = authorization.substr(kScheme.size());
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

}  // namespace ecapture::api
