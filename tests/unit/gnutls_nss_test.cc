// gnutls/nss modules: GnuTLS version → session layout, version sniffing, key log lines, configs.
#include <gtest/gtest.h>

#include <cstring>

#include "modules/tlslib/gnutls_keys.h"
#include "modules/tlslib/nss_version.h"
#include "modules/tlslib/tlslib_config.h"
#include "registry_json.h"

namespace ecapture::tlslib {
namespace {

TEST(GnutlsLayoutTest, MeasuredVersionSelectsItsLayout) {
  // The offsets measured in a live Debian 12 libgnutls30 3.7.9 session.
  for (const char* v : {"3.7.9", "gnutls 3.7.9", "GnuTLS 3.7.9"}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_TRUE(l) << v << ": " << l.error().to_string();
    EXPECT_EQ(l->name, "gnutls 3.7.7-3.7.11");
    EXPECT_EQ(l->layout.cs, 16u);
    EXPECT_EQ(l->layout.cs_id, 8u);
    EXPECT_EQ(l->layout.prf, 24u);
    EXPECT_EQ(l->layout.prf_output_size, 28u);
    EXPECT_EQ(l->layout.master_secret, 32u);
    EXPECT_EQ(l->layout.client_random, 80u);
    EXPECT_EQ(l->layout.tls13_secrets, 6036u);
    EXPECT_EQ(l->layout.tls13_stride, static_cast<uint32_t>(GNUTLS_SECRET_MAX));
  }
}

// Every supported release -> its row and key.proto.tls13.hs_ckey (gnutls_layouts_gen.sh output).
TEST(GnutlsLayoutTest, EverySupportedReleaseSelectsItsLayout) {
  struct Case {
    const char* version;
    const char* row;
    uint32_t hs_ckey;
  };
  const Case cases[] = {
      {"3.6.4", "gnutls 3.6.4", 5084},
      {"3.6.5", "gnutls 3.6.5", 5252},
      {"3.6.6", "gnutls 3.6.6", 5260},
      {"3.6.7", "gnutls 3.6.7", 5292},
      {"3.6.8", "gnutls 3.6.8-3.6.9", 5308},
      {"3.6.9", "gnutls 3.6.8-3.6.9", 5308},
      {"3.6.10", "gnutls 3.6.10-3.6.12", 5332},
      {"3.6.11", "gnutls 3.6.10-3.6.12", 5332},
      {"3.6.11.1", "gnutls 3.6.10-3.6.12", 5332},
      {"3.6.12", "gnutls 3.6.10-3.6.12", 5332},
      {"3.6.13", "gnutls 3.6.13-3.6.16", 6116},
      {"3.6.14", "gnutls 3.6.13-3.6.16", 6116},
      {"3.6.15", "gnutls 3.6.13-3.6.16", 6116},
      {"3.6.16", "gnutls 3.6.13-3.6.16", 6116},
      {"3.7.0", "gnutls 3.7.0-3.7.2", 6148},
      {"3.7.1", "gnutls 3.7.0-3.7.2", 6148},
      {"3.7.2", "gnutls 3.7.0-3.7.2", 6148},
      {"3.7.3", "gnutls 3.7.3-3.7.6", 6156},
      {"3.7.4", "gnutls 3.7.3-3.7.6", 6156},
      {"3.7.5", "gnutls 3.7.3-3.7.6", 6156},
      {"3.7.6", "gnutls 3.7.3-3.7.6", 6156},
      {"3.7.7", "gnutls 3.7.7-3.7.11", 6036},
      {"3.7.8", "gnutls 3.7.7-3.7.11", 6036},
      {"3.7.9", "gnutls 3.7.7-3.7.11", 6036},
      {"3.7.10", "gnutls 3.7.7-3.7.11", 6036},
      {"3.7.11", "gnutls 3.7.7-3.7.11", 6036},
      {"3.8.0", "gnutls 3.8.0-3.8.3", 6036},
      {"3.8.1", "gnutls 3.8.0-3.8.3", 6036},
      {"3.8.2", "gnutls 3.8.0-3.8.3", 6036},
      {"3.8.3", "gnutls 3.8.0-3.8.3", 6036},
      {"3.8.4", "gnutls 3.8.4-3.8.6", 6108},
      {"3.8.5", "gnutls 3.8.4-3.8.6", 6108},
      {"3.8.6", "gnutls 3.8.4-3.8.6", 6108},
      {"3.8.7", "gnutls 3.8.7-3.8.9", 6612},
      {"3.8.8", "gnutls 3.8.7-3.8.9", 6612},
      {"3.8.9", "gnutls 3.8.7-3.8.9", 6612},
      {"3.8.10", "gnutls 3.8.10", 6940},
      {"3.8.11", "gnutls 3.8.11-3.8.13", 7036},
      {"3.8.12", "gnutls 3.8.11-3.8.13", 7036},
      {"3.8.13", "gnutls 3.8.11-3.8.13", 7036},
  };
  for (const auto& c : cases) {
    auto l = gnutls_layout_for_version(c.version);
    ASSERT_TRUE(l) << c.version << ": " << l.error().to_string();
    EXPECT_EQ(l->name, c.row) << c.version;
    EXPECT_EQ(l->layout.tls13_secrets, c.hs_ckey) << c.version;
    // security_parameters and the cipher suite / mac entries did not move in 3.6.4-3.8.13
    EXPECT_EQ(l->layout.cs, 16u) << c.version;
    EXPECT_EQ(l->layout.cs_id, 8u) << c.version;
    EXPECT_EQ(l->layout.prf, 24u) << c.version;
    EXPECT_EQ(l->layout.prf_output_size, 28u) << c.version;
    EXPECT_EQ(l->layout.master_secret, 32u) << c.version;
    EXPECT_EQ(l->layout.client_random, 80u) << c.version;
    EXPECT_EQ(l->layout.tls13_stride, 64u) << c.version;
  }
}

TEST(GnutlsLayoutTest, TooNewVersionsAreRefused) {
  for (const char* v : {"3.8.14", "3.8.100", "3.9.0", "4.0.0", "3.7.12", "3.6.17"}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_FALSE(l) << v;
    const std::string msg = l.error().to_string();
    EXPECT_NE(msg.find(std::string("GnuTLS ") + v + " has no known session layout"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("known: 3.6.4-3.8.13"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--ssl_version"), std::string::npos) << msg;
  }
}

TEST(GnutlsLayoutTest, TooOldVersionsAreRefused) {
  for (const char* v : {"3.6.3", "3.6.0", "3.5.19", "3.1.0", "2.12.23"}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_FALSE(l) << v;
    const std::string msg = l.error().to_string();
    EXPECT_NE(msg.find(std::string("GnuTLS ") + v + " is too old for key capture"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("supported: 3.6.4-3.8.13"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--ssl_version"), std::string::npos) << msg;
  }
}

TEST(GnutlsLayoutTest, UnreadableVersionsAreRefused) {
  for (const char* v : {"", "openssl 3.0.2", "3.7.9.1", "3.7", "3.7.9a", "x3.7.9", "3.7.9 "}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_FALSE(l) << v;
    const std::string msg = l.error().to_string();
    EXPECT_NE(msg.find(std::string("cannot read GnuTLS version '") + v + "'"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("--ssl_version X.Y.Z"), std::string::npos) << msg;
  }
}

TEST(GnutlsLayoutTest, SniffsTheVersionString) {
  EXPECT_EQ(
      sniff_gnutls_version_in_bytes(std::string_view("x\0Enabled GnuTLS 3.7.9 logging...\0", 34)),
      "3.7.9");
  EXPECT_EQ(sniff_gnutls_version_in_bytes("Enabled GnuTLS 3.8.10 logging"), "3.8.10");
  EXPECT_EQ(sniff_gnutls_version_in_bytes("Enabled GnuTLS 3.6.11.1 logging..."), "3.6.11.1");
  EXPECT_EQ(sniff_gnutls_version_in_bytes("GnuTLS 3.7.9"), std::nullopt);
  EXPECT_EQ(sniff_gnutls_version_in_bytes(""), std::nullopt);
}

// Strings as .rodata holds them: each followed by a NUL.
std::string rodata(std::initializer_list<std::string_view> strings) {
  std::string out;
  for (std::string_view s : strings) out.append(s).push_back('\0');
  return out;
}

TEST(NssVersionTest, SniffsNsprFromItsOnlyDottedString) {
  EXPECT_EQ(sniff_nspr_version_in_bytes(rodata({"", "PR_Read", "%d.%d", "4.35", "localhost"})),
            "4.35");
  EXPECT_EQ(sniff_nspr_version_in_bytes(rodata({"x", "4.36.1 Beta"})), "4.36.1");
  EXPECT_EQ(sniff_nspr_version_in_bytes(rodata({"4.35", "y", "4.35"})), "4.35");  // twice
  EXPECT_EQ(sniff_nspr_version_in_bytes(rodata({"4.35", "1.2"})), std::nullopt);  // ambiguous
  EXPECT_EQ(sniff_nspr_version_in_bytes(rodata({"v4.35", "4.", ".35", "4", "4.35a"})),
            std::nullopt);
  EXPECT_EQ(sniff_nspr_version_in_bytes(""), std::nullopt);
}

TEST(NssVersionTest, SniffsNss) {
  EXPECT_EQ(sniff_nss_version_in_bytes(rodata({"", "Version: NSS 3.87.1"})), "3.87.1");
  EXPECT_EQ(sniff_nss_version_in_bytes(rodata({"NSS x", "NSS 3.90 Basic ECC"})), "3.90");
  EXPECT_EQ(sniff_nss_version_in_bytes(rodata({"NSS 3"})), std::nullopt);
  EXPECT_EQ(sniff_nss_version_in_bytes("Version: 3.87.1"), std::nullopt);
}

gnutls_keys_event make_event(uint8_t cs0, uint32_t hash_len) {
  gnutls_keys_event k{};
  k.kind = GNUTLS_RECORD_KEYS;
  k.cs_id[0] = cs0;
  k.cs_id[1] = 0x01;
  k.hash_len = hash_len;
  for (int i = 0; i < 32; ++i) k.client_random[i] = static_cast<uint8_t>(i + 1);
  for (int i = 0; i < 48; ++i) k.master_secret[i] = static_cast<uint8_t>(0xa0 + i % 16);
  for (int s = 0; s < GNUTLS_TLS13_SECRETS; ++s) {
    for (int i = 0; i < GNUTLS_SECRET_MAX; ++i) k.tls13[s][i] = static_cast<uint8_t>(s * 16 + 1);
  }
  return k;
}

TEST(GnutlsKeylogTest, Tls12GivesClientRandomLine) {
  auto k = make_event(0xc0, 32);
  auto lines = gnutls_keylog_lines(k);
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].label, "CLIENT_RANDOM");
  EXPECT_EQ((*lines)[0].client_random,
            "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
  EXPECT_EQ((*lines)[0].secret.size(), 96u);
  EXPECT_EQ((*lines)[0].secret.substr(0, 8), "a0a1a2a3");
  std::memset(k.master_secret, 0, sizeof(k.master_secret));
  EXPECT_FALSE(gnutls_keylog_lines(k));
}

TEST(GnutlsKeylogTest, Tls13UsesTheHashLength) {
  for (uint32_t len : {32u, 48u}) {
    auto lines = gnutls_keylog_lines(make_event(0x13, len));
    ASSERT_TRUE(lines);
    ASSERT_EQ(lines->size(), 5u);
    const char* labels[] = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
                            "EXPORTER_SECRET"};
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ((*lines)[i].label, labels[i]);
      EXPECT_EQ((*lines)[i].secret.size(), 2 * len);
    }
    EXPECT_EQ((*lines)[2].secret.substr(0, 4), "2121");
  }
  EXPECT_FALSE(gnutls_keylog_lines(make_event(0x13, 64)));
  auto zero = make_event(0x13, 32);
  std::memset(zero.client_random, 0, sizeof(zero.client_random));
  EXPECT_FALSE(gnutls_keylog_lines(zero));
}

TEST(GnutlsNssConfigTest, JsonFieldNames) {
  GlobalConfig defaults;
  auto g = json_config("gnutls", nlohmann::json{{"capturemode", "keylog"},
                                                  {"keylogfile", "/tmp/k.log"},
                                                  {"pcapfilter", "tcp port 1"},
                                                  {"ifname", "lo"},
                                                  {"sslversion", "3.7.9"}},
                                   defaults);
  ASSERT_TRUE(g) << g.error().to_string();
  const auto& gc = static_cast<const GnutlsConfig&>(**g);
  EXPECT_EQ(gc.model, "keylog");
  EXPECT_EQ(gc.keylogfile, "/tmp/k.log");
  EXPECT_EQ(gc.pcap_filter, "tcp port 1");
  EXPECT_EQ(gc.ssl_version, "3.7.9");
  EXPECT_EQ(gc.to_json()["keylogfile"], "/tmp/k.log");
  EXPECT_FALSE(json_config("gnutls", nlohmann::json{{"capturemode", "bogus"}}, defaults));
  EXPECT_FALSE(json_config("gnutls", nlohmann::json{{"gnutlspath", "/nonexistent"}}, defaults));
  EXPECT_FALSE(json_config("gnutls", nlohmann::json{{"nspr_path", "/x"}}, defaults));
  auto n =
      json_config("nss", nlohmann::json{{"nspr_path", "/nonexistent/libnspr4.so"}}, defaults);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().to_string().find("nspr_path"), std::string::npos);
  auto ok = json_config("nss", nlohmann::json::object(), defaults);
  ASSERT_TRUE(ok);
  EXPECT_EQ(static_cast<const NssConfig&>(**ok).nspr, "");
}

}  // namespace
}  // namespace ecapture::tlslib
