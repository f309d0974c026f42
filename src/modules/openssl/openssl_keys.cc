// Key log lines from secrets records; TLS 1.3 handshake traffic secret derivation.
#include "modules/openssl/openssl_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>

namespace ecapture::openssl {

static_assert(sizeof(openssl_keys_event) == 504, "ABI: openssl_keys_event size");
static_assert(offsetof(openssl_keys_event, client_random) == 96, "ABI: client_random offset");
static_assert(sizeof(openssl_secret_event) == 216, "ABI: openssl_secret_event size");
static_assert(offsetof(openssl_secret_event, tuple) == 56, "ABI: secret tuple offset");
static_assert(offsetof(openssl_secret_event, label) == 128, "ABI: secret label offset");

size_t tls13_hash_len(std::span<const uint8_t, OPENSSL_SECRET_MAX> secret) {
  bool tail = std::any_of(secret.begin() + 32, secret.begin() + 48, [](uint8_t b) { return b; });
  return tail ? 48 : 32;
}

Result<std::vector<uint8_t>> hkdf_expand_label(std::span<const uint8_t> secret,
                                               std::string_view label,
                                               std::span<const uint8_t> context, size_t length) {
  // struct HkdfLabel { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque
  // context<0..255>; }
  std::string full = "tls13 " + std::string(label);
  std::vector<uint8_t> info;
  info.push_back(static_cast<uint8_t>(length >> 8));
  info.push_back(static_cast<uint8_t>(length & 0xff));
  info.push_back(static_cast<uint8_t>(full.size()));
  info.insert(info.end(), full.begin(), full.end());
  info.push_back(static_cast<uint8_t>(context.size()));
  info.insert(info.end(), context.begin(), context.end());

  const char* digest = secret.size() == 48 ? "SHA384" : "SHA256";
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return make_error("libcrypto has no HKDF");
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (kctx == nullptr) return make_error("cannot create an HKDF context");
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::vector<uint8_t> out(length);
  int ok = EVP_KDF_derive(kctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(kctx);
  if (ok != 1) return make_error("HKDF-Expand-Label {} failed", label);
  return out;
}

Result<std::vector<KeylogLine>> keylog_lines(const openssl_keys_event& k) {
  std::vector<KeylogLine> lines;
  const std::string cr = to_hex(k.client_random);
  auto nonzero = [](std::span<const uint8_t> s) {
    return std::any_of(s.begin(), s.end(), [](uint8_t b) { return b; });
  };
  if (k.version != 0x0304) {
    if (!nonzero(k.master_key))
      return make_error("TLS {:#06x} session without master key", k.version);
    lines.push_back({"CLIENT_RANDOM", cr, to_hex(k.master_key)});
    return lines;
  }
  std::span<const uint8_t, OPENSSL_SECRET_MAX> cats(k.client_app_traffic_secret);
  const size_t n = tls13_hash_len(cats);
  if (!nonzero(cats.first(n))) return make_error("TLS 1.3 session without traffic secrets");
  std::span<const uint8_t> hs(k.handshake_secret, n), hash(k.handshake_traffic_hash, n);
  if (nonzero(hs) && nonzero(hash)) {
    ASSIGN_OR_RETURN(auto chts, hkdf_expand_label(hs, "c hs traffic", hash, n));
    ASSIGN_OR_RETURN(auto shts, hkdf_expand_label(hs, "s hs traffic", hash, n));
    lines.push_back({"CLIENT_HANDSHAKE_TRAFFIC_SECRET", cr, to_hex(chts)});
    lines.push_back({"SERVER_HANDSHAKE_TRAFFIC_SECRET", cr, to_hex(shts)});
  }
  lines.push_back({"CLIENT_TRAFFIC_SECRET_0", cr, to_hex(cats.first(n))});
  std::span<const uint8_t> sats(k.server_app_traffic_secret, n), exp(k.exporter_master_secret, n);
  if (nonzero(sats)) lines.push_back({"SERVER_TRAFFIC_SECRET_0", cr, to_hex(sats)});
  if (nonzero(exp)) lines.push_back({"EXPORTER_SECRET", cr, to_hex(exp)});
  return lines;
}

std::optional<KeylogLine> secret_keylog_line(const openssl_secret_event& e) {
  // HKDF labels of RFC 8446 §7.1 (without "tls13 ") → SSLKEYLOGFILE labels.
  static constexpr std::pair<std::string_view, std::string_view> kLabels[] = {
      {"key expansion", "CLIENT_RANDOM"},  // TLS 1.2: its input secret is the master secret
      {"c e traffic", "CLIENT_EARLY_TRAFFIC_SECRET"},
      {"e exp master", "EARLY_EXPORTER_SECRET"},
      {"c hs traffic", "CLIENT_HANDSHAKE_TRAFFIC_SECRET"},
      {"s hs traffic", "SERVER_HANDSHAKE_TRAFFIC_SECRET"},
      {"c ap traffic", "CLIENT_TRAFFIC_SECRET_0"},
      {"s ap traffic", "SERVER_TRAFFIC_SECRET_0"},
      {"exp master", "EXPORTER_SECRET"},
  };
  const std::string_view label(e.label, std::min<size_t>(e.label_len, sizeof(e.label)));
  const size_t n = std::min<size_t>(e.secret_len, sizeof(e.secret));
  if (n == 0) return std::nullopt;
  for (auto [hkdf, keylog] : kLabels) {
    if (label == hkdf) {
      return KeylogLine{std::string(keylog), to_hex(e.client_random),
                        to_hex(std::span<const uint8_t>(e.secret, n))};
    }
  }
  return std::nullopt;
}

}  // namespace ecapture::openssl
