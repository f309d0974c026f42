// NSPR and NSS version strings, for the target report of the nss module.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ecapture::tlslib {

// NSPR keeps its version (PR_VERSION, "4.35") as the one string of its .rodata made only of
// dotted numbers; nullopt when there is none or more than one.
std::optional<std::string> sniff_nspr_version_in_bytes(std::string_view rodata);
// NSS's libnss3/libssl3 carry "Version: NSS 3.87.1" (or "NSS 3.87.1 ..."): "3.87.1".
std::optional<std::string> sniff_nss_version_in_bytes(std::string_view rodata);
// The same, reading the .rodata of the file at `path`; nullopt when it cannot be read.
std::optional<std::string> sniff_nspr_version(const std::string& path);
std::optional<std::string> sniff_nss_version(const std::string& path);

}  // namespace ecapture::tlslib
