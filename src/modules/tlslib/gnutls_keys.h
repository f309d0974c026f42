// GnuTLS key capture: version → session layout, and key log lines from a gnutls_keys_event.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "output/keylog_writer.h"
#include "modules/tlslib/tlslib_abi.h"

namespace ecapture::tlslib {

struct GnutlsNamedLayout {
  std::string name;  // the first release of the layout's row, e.g. "gnutls 3.7.7"
  gnutls_layout layout{};
};

// The version in a GnuTLS library's bytes ("Enabled GnuTLS 3.7.9 logging...", also 3.6.11.1), or
// nullopt.
std::optional<std::string> sniff_gnutls_version_in_bytes(std::string_view bytes);
// The same, reading the file's .rodata; error when the file cannot be read.
Result<std::optional<std::string>> sniff_gnutls_version(const std::string& path);

// The session layout of GnuTLS `version` ("3.7.9", optionally prefixed "gnutls "), from the
// table in gnutls_layouts.cc (every release 3.6.4-3.8.13). Unknown, too old and too new versions
// are refused with a message naming the version and --ssl_version; nothing falls back silently.
Result<GnutlsNamedLayout> gnutls_layout_for_version(std::string_view version);

// TLS 1.2: CLIENT_RANDOM; TLS 1.3 (cipher suite 0x13xx): CLIENT_HANDSHAKE_TRAFFIC_SECRET,
// SERVER_HANDSHAKE_TRAFFIC_SECRET, CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0,
// EXPORTER_SECRET. Errors when the record holds no usable secret.
Result<std::vector<KeylogLine>> gnutls_keylog_lines(const gnutls_keys_event& k);

}  // namespace ecapture::tlslib
