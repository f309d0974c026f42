// Finds version strings inside binaries: OpenSSL ("OpenSSL 3.0.19 27 Jan 2026"), BoringSSL.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ecapture::elf {

enum class SslFlavor { kOpenSsl, kBoringSsl };

struct SslVersion {
  SslFlavor flavor = SslFlavor::kOpenSsl;
  std::string version;      // "3.0.19", "1.1.1w", "3.6.0-beta1"; for BoringSSL "" (no number)
  std::string raw;          // the full matched text, e.g. "OpenSSL 3.0.19 27 Jan 2026"
  std::string source_path;  // the file the string was found in (libcrypto for OpenSSL 3)
  std::string display() const;  // "OpenSSL 3.0.19" / "BoringSSL"
};

// Scans the file's bytes for the first match of the regex
// `OpenSSL \d\.\d+\.\d+[a-z]*(-(alpha|beta|pre|dev)\d*)?` (and a "BoringSSL" marker). Returns
// nullopt when no version string is present.
Result<std::optional<SslVersion>> sniff_ssl_version_in(const std::string& path);

// The same scan reading `chunk_size` bytes at a time (tests use tiny chunks to move the read
// boundaries across the version string).
Result<std::optional<SslVersion>> sniff_ssl_version_in(const std::string& path,
                                                       size_t chunk_size);

// The same scan over bytes already in memory; source_path is left empty.
std::optional<SslVersion> sniff_ssl_version_in_bytes(std::string_view bytes);

// Detects the version of the OpenSSL/BoringSSL library (or static executable) at `libssl_path`.
// OpenSSL 3's libssl has no version string, so when the file itself has none, the libcrypto named
// in its DT_NEEDED (resolved next to libssl first, then through the loader search path) is
// scanned. Error when no version can be found anywhere: the message names the files searched
// and suggests --ssl_version.
Result<SslVersion> detect_ssl_version(const std::string& libssl_path);

}  // namespace ecapture::elf
