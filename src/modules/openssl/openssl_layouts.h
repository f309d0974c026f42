// Struct layouts of OpenSSL releases, as data: where the SSL object keeps the TLS version, the
// client random, the session (TLS 1.2 master key) and the TLS 1.3 secrets.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "modules/openssl/openssl_abi.h"

namespace ecapture::openssl {

struct NamedLayout {
  std::string name;  // the layout family, e.g. "openssl 3.0.0"
  openssl_layout layout;
};

// The version text that stands for every BoringSSL build (layout_for_version accepts it).
inline constexpr std::string_view kBoringSsl = "boringssl";

// Picks the layout for an OpenSSL version string such as "3.0.19" or "1.1.1w". Unknown versions
// (including newer patch releases of a family whose layout moved before) are refused with a
// message naming the version and --ssl_version, and so are pre-releases ("3.6.0-beta1"); nothing
// falls back to another version silently.
Result<NamedLayout> layout_for_version(std::string_view version);

// Parses --ssl_version ("openssl 3.0.12", "3.0.12", "OpenSSL 1.1.1w") into a version string;
// eCapture's BoringSSL names ("boringssl na", "boringssl_a_13" ... "boringssl_a_16") give
// kBoringSsl.
Result<std::string> parse_ssl_version_flag(std::string_view flag);

}  // namespace ecapture::openssl
