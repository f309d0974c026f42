// OpenSSL layout table. Sources: offsets measured on Debian's 3.0.19 and 3.0.22 (memory scan after
// a real handshake, checked against the keylog callback; /work/shared/reference/targets.md §1)
// and eCapture's generated offset headers per release family (ecapture-inventory.md §4.1.3). In
// every 1.1.1/3.x family the TLS 1.3 secrets are twelve 64-byte arrays starting at early_secret.
#include "modules/openssl/openssl_layouts.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <optional>

namespace ecapture::openssl {
namespace {

struct Version {
  int major = 0, minor = 0, patch = 0;
  char letter = 0;  // 1.x releases: 1.1.1w
};

std::optional<Version> parse_version(std::string_view s) {
  Version v;
  char letter = 0;
  int n = std::sscanf(std::string(s).c_str(), "%d.%d.%d%c", &v.major, &v.minor, &v.patch, &letter);
  if (n < 3) return std::nullopt;
  if (n == 4 && std::islower(static_cast<unsigned char>(letter))) v.letter = letter;
  return v;
}

// A row: versions [from, to] (inclusive, same major.minor) share `layout`.
struct Row {
  const char* name;
  int major, minor;
  int patch_from, patch_to;  // 3.x patch numbers
  char letter_from, letter_to;  // 1.x letters ('\0' = the release without a letter)
  openssl_layout layout;
};

// {version, session, s3 pointer (0: inline), client_random, master_key_length, master_key,
//  early_secret}
constexpr std::array<Row, 18> kRows = {{
    // 1.0.2a-u: generated from 1.0.2u. No TLS 1.3.
    {"openssl 1.0.2a", 1, 0, 2, 2, 0, 'u', {0x0, 0x130, 0x80, 0xc4, 0x10, 0x14, 0, 0}},
    // 1.1.0a-l: generated from 1.1.0l. No TLS 1.3.
    {"openssl 1.1.0a", 1, 1, 0, 0, 0, 'l', {0x0, 0x178, 0x90, 0xb0, 0x4, 0x8, 0, 0}},
    {"openssl 1.1.1a", 1, 1, 1, 1, 'a', 'a', {0x0, 0x510, 0xa8, 0xb8, 0x8, 0x50, 0x134, 0}},
    {"openssl 1.1.1b", 1, 1, 1, 1, 'b', 'c', {0x0, 0x508, 0xa8, 0xb8, 0x8, 0x50, 0x134, 0}},
    {"openssl 1.1.1d", 1, 1, 1, 1, 'd', 'i', {0x0, 0x510, 0xa8, 0xb8, 0x8, 0x50, 0x13c, 0}},
    {"openssl 1.1.1j", 1, 1, 1, 1, 'j', 'w', {0x0, 0x510, 0xa8, 0xb8, 0x8, 0x50, 0x13c, 0}},
    // 3.0: measured on 3.0.19/3.0.22. 3.0.12 is not apart: a build of its release tag reads the
    // session at 0x918 like 3.0.11 and 3.0.13 (ssl_local.h is the same in all three).
    {"openssl 3.0.0", 3, 0, 0, 12, 0, 0, {0x0, 0x918, 0, 0x160, 0x8, 0x50, 0x544, 0}},
    {"openssl 3.0.13", 3, 0, 13, 22, 0, 0, {0x0, 0x918, 0, 0x160, 0x8, 0x50, 0x544, 0}},
    {"openssl 3.1.0", 3, 1, 0, 8, 0, 0, {0x0, 0x918, 0, 0x160, 0x8, 0x50, 0x544, 0}},
    // 3.2+: the SSL* is an SSL_CONNECTION; offsets are within it.
    {"openssl 3.2.0", 3, 2, 0, 3, 0, 0, {0x40, 0x880, 0, 0x140, 0x8, 0x50, 0x4fc, 0}},
    {"openssl 3.2.4", 3, 2, 4, 6, 0, 0, {0x48, 0x888, 0, 0x148, 0x8, 0x50, 0x504, 0}},
    {"openssl 3.3.0", 3, 3, 0, 2, 0, 0, {0x40, 0x880, 0, 0x140, 0x8, 0x50, 0x4fc, 0}},
    {"openssl 3.3.3", 3, 3, 3, 7, 0, 0, {0x48, 0x888, 0, 0x148, 0x8, 0x50, 0x504, 0}},
    {"openssl 3.4.0", 3, 4, 0, 0, 0, 0, {0x40, 0x880, 0, 0x140, 0x8, 0x50, 0x4fc, 0}},
    {"openssl 3.4.1", 3, 4, 1, 6, 0, 0, {0x48, 0x888, 0, 0x148, 0x8, 0x50, 0x504, 0}},
    // 3.5.0-3.5.7 (generated from 3.5.7); eCapture uses the same for 3.6.0-3.6.2 and 4.0.0-4.0.1.
    {"openssl 3.5.0", 3, 5, 0, 7, 0, 0, {0x48, 0x900, 0, 0x188, 0x8, 0x50, 0x57c, 0}},
    {"openssl 3.6.0", 3, 6, 0, 2, 0, 0, {0x48, 0x900, 0, 0x188, 0x8, 0x50, 0x57c, 0}},
    {"openssl 4.0.0", 4, 0, 0, 1, 0, 0, {0x48, 0x900, 0, 0x188, 0x8, 0x50, 0x57c, 0}},
}};

bool matches(const Row& r, const Version& v) {
  if (r.major != v.major || r.minor != v.minor) return false;
  if (r.major == 1) {
    if (v.patch != r.patch_from) return false;
    char l = v.letter;
    return l >= r.letter_from && l <= r.letter_to;
  }
  return v.patch >= r.patch_from && v.patch <= r.patch_to;
}

}  // namespace

Result<NamedLayout> layout_for_version(std::string_view version) {
  if (version == kBoringSsl) {
    // ssl_st.s3 0x30 and SSL3_STATE.client_random 0x30 in Android 13 through 16 and upstream
    // (eCapture's generated boringssl_* headers; measured on Debian's 13.0.0+r24 build, and
    // checked at run time against SSL_get_client_random's code where it can be decoded).
    openssl_layout l{};
    l.ssl_s3 = 0x30;
    l.s3_client_random = 0x30;
    l.boringssl = 1;
    return NamedLayout{std::string(kBoringSsl), l};
  }
  auto v = parse_version(version);
  if (!v) {
    return make_error("cannot read OpenSSL version '{}': give it as --ssl_version \"openssl "
                      "X.Y.Z\"", version);
  }
  if (auto dash = version.find('-'); dash != std::string_view::npos) {
    const std::string_view tag = version.substr(dash + 1);
    for (std::string_view pre : {"alpha", "beta", "pre", "dev"}) {
      if (tag.rfind(pre, 0) != 0) continue;
      // A pre-release's structs may differ from the release's, and no row was measured on one.
      return make_error("OpenSSL {} is a pre-release: no struct layout is known for it, so its "
                        "keys cannot be read (text capture works with any version). If it shares "
                        "the layout of a release, force that row with --ssl_version, e.g. "
                        "--ssl_version \"openssl {}\"", version, version.substr(0, dash));
    }
  }
  const Row* row = nullptr;
  for (const Row& r : kRows) {
    if (matches(r, *v)) row = &r;
  }
  if (row == nullptr) {
    return make_error("OpenSSL {} has no known struct layout, so its keys cannot be read (text "
                      "capture works with any version). If it shares the layout of a known "
                      "release, force it with --ssl_version, e.g. --ssl_version \"openssl "
                      "3.0.13\"", version);
  }
  return NamedLayout{row->name, row->layout};
}

Result<std::string> parse_ssl_version_flag(std::string_view flag) {
  std::string s(flag);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  auto trim = [](std::string& t) {
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(0, 1);
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  };
  trim(s);
  if (s.rfind("boringssl", 0) == 0 || s == "android_default") {
    // eCapture's names for BoringSSL builds. Only ssl->s3 and s3->client_random are read (the
    // secrets are taken where they are derived), and these have not moved in any of them.
    static constexpr std::string_view kNames[] = {
        "boringssl",      "boringssl na",   "boringssl 1.1.1", "boringssl_na",
        "boringssl_a_13", "boringssl_a_14", "boringssl_a_15",  "boringssl_a_16",
        "android_default"};
    if (std::find(std::begin(kNames), std::end(kNames), s) == std::end(kNames)) {
      return make_error("--ssl_version '{}': unknown BoringSSL build (use \"boringssl\", "
                        "\"boringssl na\" or boringssl_a_13 ... boringssl_a_16)", flag);
    }
    return std::string(kBoringSsl);
  }
  if (s.rfind("openssl", 0) == 0) s.erase(0, 7);
  trim(s);
  if (!parse_version(s)) {
    return make_error("--ssl_version '{}': expected \"openssl X.Y.Z\" (e.g. \"openssl 3.0.13\" "
                      "or \"openssl 1.1.1w\")", flag);
  }
  return s;
}

}  // namespace ecapture::openssl
