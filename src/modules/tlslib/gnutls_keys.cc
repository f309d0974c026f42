// GnuTLS version sniffing and key log lines (the layout table is gnutls_layouts.cc).
#include "modules/tlslib/gnutls_keys.h"

#include <algorithm>
#include <cstddef>
#include <regex>

#include "elf/elf_file.h"

namespace ecapture::tlslib {

static_assert(sizeof(gnutls_keys_event) == 504, "ABI: gnutls_keys_event size");
static_assert(offsetof(gnutls_keys_event, client_random) == 96, "ABI: client_random offset");
static_assert(offsetof(gnutls_keys_event, tuple) == 56, "ABI: tuple offset");

namespace {

bool all_zero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t c) { return c == 0; });
}

}  // namespace

std::optional<std::string> sniff_gnutls_version_in_bytes(std::string_view bytes) {
  static const std::regex re(R"(Enabled GnuTLS (\d+\.\d+\.\d+(?:\.\d+)?) logging)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(bytes.begin(), bytes.end(), m, re)) return std::nullopt;
  return m[1].str();
}

Result<std::optional<std::string>> sniff_gnutls_version(const std::string& path) {
  ASSIGN_OR_RETURN(auto elf, elf::ElfFile::open(path));
  auto rodata = elf->section_data(".rodata");
  return sniff_gnutls_version_in_bytes(
      std::string_view(reinterpret_cast<const char*>(rodata.data()), rodata.size()));
}

Result<std::vector<KeylogLine>> gnutls_keylog_lines(const gnutls_keys_event& k) {
  std::vector<KeylogLine> lines;
  if (all_zero(k.client_random)) return make_error("client random is zero");
  const std::string cr = to_hex(k.client_random);
  if (k.cs_id[0] == 0x13) {  // TLS 1.3 suites are 0x13xx
    if (k.hash_len != 32 && k.hash_len != 48) {
      return make_error("unexpected TLS 1.3 hash length {}", k.hash_len);
    }
    static constexpr const char* kLabels[GNUTLS_TLS13_SECRETS] = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"};
    for (int i = 0; i < GNUTLS_TLS13_SECRETS; ++i) {
      std::span<const uint8_t> s(k.tls13[i], k.hash_len);
      if (all_zero(s)) return make_error("TLS 1.3 secret {} is zero", kLabels[i]);
      lines.push_back({kLabels[i], cr, to_hex(s)});
    }
    return lines;
  }
  if (all_zero(k.master_secret)) return make_error("master secret is zero");
  lines.push_back({"CLIENT_RANDOM", cr, to_hex(k.master_secret)});
  return lines;
}

}  // namespace ecapture::tlslib
