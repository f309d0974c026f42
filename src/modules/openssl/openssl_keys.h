// Turning the secrets the kernel side read into NSS key log lines (TLS 1.3 handshake traffic
// secrets derived with libcrypto's HKDF, RFC 8446 §7.1).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "modules/openssl/openssl_abi.h"
#include "output/keylog_writer.h"

namespace ecapture::openssl {

using ecapture::KeylogLine;
using ecapture::to_hex;

// Lines in a fixed order: TLS 1.2 CLIENT_RANDOM; TLS 1.3 CLIENT_HANDSHAKE_TRAFFIC_SECRET,
// SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0,
// EXPORTER_SECRET. Errors when the record holds no usable secret.
Result<std::vector<KeylogLine>> keylog_lines(const openssl_keys_event& k);

// The key log line of one BoringSSL secret record, or nullopt for derivations that are not
// logged (resumption master, binders, key updates).
std::optional<KeylogLine> secret_keylog_line(const openssl_secret_event& e);

// HKDF-Expand-Label(secret, label, context, length) with SHA-256 (hash_len 32) or SHA-384 (48).
Result<std::vector<uint8_t>> hkdf_expand_label(std::span<const uint8_t> secret,
                                               std::string_view label,
                                               std::span<const uint8_t> context, size_t length);

// TLS 1.3 secrets sit in 64-byte buffers: 48 bytes used for SHA-384 suites, 32 for SHA-256 (the
// rest zero, the struct being zero-allocated).
size_t tls13_hash_len(std::span<const uint8_t, OPENSSL_SECRET_MAX> secret);


}  // namespace ecapture::openssl
