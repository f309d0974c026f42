// GnuTLS session layouts, as data: where a gnutls_session_t keeps what the gnutls key probe
// (bpf/tlslib.bpf.c) reads -- security_parameters.cs (-> cipher suite id[2]), .prf (-> mac entry
// output_size), .master_secret, .client_random, and the TLS 1.3 secrets key.proto.tls13.hs_ckey,
// hs_skey, ap_ckey, ap_skey, ap_expkey (MAX_HASH_SIZE = 64 bytes apart in every release here).
//
// Source of every offset: GnuTLS's own lib/gnutls_int.h at each release commit of
// github.com/gnutls/gnutls, compiled for x86_64 (LP64) with an offsetof() printer:
// gnutls_layouts_gen.sh (next to this file) prints one row per release. Release commits: tags
// gnutls_3_6_4..gnutls_3_6_12; 3.6.13 bd87b5b6 ("bumped version"); 3.6.14 73a735bd,
// 3.6.15 5dd9a550, 3.6.16 95342ca6, 3.7.0 744169a4, 3.7.1 3aa1c455, 3.7.2 090c9284,
// 3.7.3 68c744ab, 3.7.4 3749f203, 3.7.5 7c9c1c3f, 3.7.6 1f8b1ff2, 3.7.7 4ce9fc14,
// 3.7.8 c9c67f45, 3.7.9 36a51119, 3.7.10 631bc04e, 3.7.11 bacbad9d, 3.8.0 516e466b,
// 3.8.1 824bc6db, 3.8.2 bc09ff9e, 3.8.3 cb797bfb, 3.8.4 58228f95, 3.8.5 e9b10446,
// 3.8.6 a5baf16d, 3.8.7 c7e4cb42, 3.8.8 a11b4972, 3.8.9 9ec909ca, 3.8.10 89a3ce36,
// 3.8.11 bf9a42d3, 3.8.12 5897dbaf, 3.8.13 805eeaaf ("Release X.Y.Z" commits).
// Check of the method: it gives for 3.7.9 exactly the offsets measured on Debian 12's
// libgnutls30 3.7.9-2+deb12u7 by searching a live session for the secrets that
// gnutls_session_set_keylog_function reported. Only that row is tested end to end here
// (tests/e2e/test_gnutls_keys.py): Debian 12 cannot install other GnuTLS releases. The other rows
// are derived from source only; a distribution patch that changes these structs would move them.
//
// Not supported: 3.6.0-3.6.3 (3.6.0-3.6.2 keep the PRF as an algorithm id and have no TLS 1.3
// secrets; 3.6.3 has draft TLS 1.3 with the traffic secrets overwriting the handshake ones), and
// anything newer than 3.8.13 (the layout moved in 3.8.4, 3.8.7, 3.8.10 and 3.8.11, so a later
// release cannot be assumed to keep it).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>
#include <string>

#include "modules/tlslib/gnutls_keys.h"

namespace ecapture::tlslib {
namespace {

struct Version {
  int major = 0, minor = 0, patch = 0;
};

// "X.Y.Z"; "3.6.11.1" (a re-release of 3.6.11 that only added missing files) reads as 3.6.11.
std::optional<Version> parse_version(const std::string& s) {
  Version v;
  int n = 0;
  if (std::sscanf(s.c_str(), "%d.%d.%d%n", &v.major, &v.minor, &v.patch, &n) != 3) {
    return std::nullopt;
  }
  std::string rest = s.substr(static_cast<size_t>(n));
  if (!rest.empty() && !(s == "3.6.11.1")) return std::nullopt;
  if (v.major < 0 || v.minor < 0 || v.patch < 0) return std::nullopt;
  return v;
}

// Releases major.minor.[patch_from, patch_to] share `layout`.
struct Row {
  const char* name;
  int major, minor, patch_from, patch_to;
  gnutls_layout layout;
};

constexpr uint32_t kStride = GNUTLS_SECRET_MAX;  // MAX_HASH_SIZE

// {cs, cs->id, prf, prf->output_size, master_secret, client_random, hs_ckey, stride}.
// security_parameters (first member of the session) and the two entry structs did not move in
// 3.6.4-3.8.13; hs_ckey moves with sizeof(internals_st) and sizeof(gnutls_pk_params_st).
constexpr Row kRows[] = {
    {"gnutls 3.6.4", 3, 6, 4, 4, {16, 8, 24, 28, 32, 80, 5084, kStride}},
    {"gnutls 3.6.5", 3, 6, 5, 5, {16, 8, 24, 28, 32, 80, 5252, kStride}},
    {"gnutls 3.6.6", 3, 6, 6, 6, {16, 8, 24, 28, 32, 80, 5260, kStride}},
    {"gnutls 3.6.7", 3, 6, 7, 7, {16, 8, 24, 28, 32, 80, 5292, kStride}},
    {"gnutls 3.6.8-3.6.9", 3, 6, 8, 9, {16, 8, 24, 28, 32, 80, 5308, kStride}},
    // gnutls_pk_params_st grew 472 -> 480 bytes.
    {"gnutls 3.6.10-3.6.12", 3, 6, 10, 12, {16, 8, 24, 28, 32, 80, 5332, kStride}},
    {"gnutls 3.6.13-3.6.16", 3, 6, 13, 16, {16, 8, 24, 28, 32, 80, 6116, kStride}},
    {"gnutls 3.7.0-3.7.2", 3, 7, 0, 2, {16, 8, 24, 28, 32, 80, 6148, kStride}},
    {"gnutls 3.7.3-3.7.6", 3, 7, 3, 6, {16, 8, 24, 28, 32, 80, 6156, kStride}},
    // 3.7.9: measured on Debian 12 and e2e-tested; the rest of the row from source.
    {"gnutls 3.7.7-3.7.11", 3, 7, 7, 11, {16, 8, 24, 28, 32, 80, 6036, kStride}},
    {"gnutls 3.8.0-3.8.3", 3, 8, 0, 3, {16, 8, 24, 28, 32, 80, 6036, kStride}},
    // gnutls_pk_params_st grew 480 -> 504 bytes.
    {"gnutls 3.8.4-3.8.6", 3, 8, 4, 6, {16, 8, 24, 28, 32, 80, 6108, kStride}},
    {"gnutls 3.8.7-3.8.9", 3, 8, 7, 9, {16, 8, 24, 28, 32, 80, 6612, kStride}},
    // internals_st grew 4176 -> 4440 bytes, gnutls_pk_params_st 504 -> 520.
    {"gnutls 3.8.10", 3, 8, 10, 10, {16, 8, 24, 28, 32, 80, 6940, kStride}},
    {"gnutls 3.8.11-3.8.13", 3, 8, 11, 13, {16, 8, 24, 28, 32, 80, 7036, kStride}},
};

constexpr const char* kKnownRange = "3.6.4-3.8.13";

}  // namespace

Result<GnutlsNamedLayout> gnutls_layout_for_version(std::string_view version) {
  std::string v(version);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view prefix : {"gnutls ", "gnutls"}) {
    if (v.starts_with(prefix)) {
      v.erase(0, prefix.size());
      break;
    }
  }
  auto parsed = parse_version(v);
  if (!parsed) {
    return make_error(
        "cannot read GnuTLS version '{}': give it as --ssl_version X.Y.Z (e.g. --ssl_version "
        "3.7.9)",
        version);
  }
  for (const Row& r : kRows) {
    if (r.major == parsed->major && r.minor == parsed->minor && parsed->patch >= r.patch_from &&
        parsed->patch <= r.patch_to) {
      return GnutlsNamedLayout{r.name, r.layout};
    }
  }
  if (parsed->major < 3 || (parsed->major == 3 && parsed->minor < 6) ||
      (parsed->major == 3 && parsed->minor == 6 && parsed->patch < 4)) {
    return make_error(
        "GnuTLS {} is too old for key capture: its session has no final TLS 1.3 secrets "
        "(supported: {}; text capture works with any version). --ssl_version can only name a "
        "supported release whose layout the library shares",
        version, kKnownRange);
  }
  return make_error(
      "GnuTLS {} has no known session layout (known: {}), so its keys cannot be read (text "
      "capture works with any version). If it shares the layout of a known release, force it "
      "with --ssl_version, e.g. --ssl_version 3.8.13",
      version, kKnownRange);
}

}  // namespace ecapture::tlslib
