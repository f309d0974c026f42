// gnutls/nss modules: GnuTLS version → session layout, version sniffing, key log lines, configs.
#include <gtest/gtest.h>

#include <cstring>

#include "modules/tlslib/gnutls_keys.h"
#include "modules/tlslib/tlslib_config.h"

namespace ecapture::tlslib {
namespace {

TEST(GnutlsLayoutTest, MeasuredVersionSelectsItsLayout) {
  for (const char* v : {"3.7.9", "gnutls 3.7.9", "GnuTLS 3.7.9"}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_TRUE(l) << v << ": " << l.error().to_string();
    EXPECT_EQ(l->name, "gnutls 3.7.9");
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

TEST(GnutlsLayoutTest, UnknownVersionsAreRefused) {
  for (const char* v : {"3.7.8", "3.8.0", "3.6.16", "", "openssl 3.0.2", "3.7.9.1"}) {
    auto l = gnutls_layout_for_version(v);
    ASSERT_FALSE(l) << v;
    EXPECT_NE(l.error().to_string().find("no GnuTLS session layout is known"), std::string::npos);
    EXPECT_NE(l.error().to_string().find("known: 3.7.9"), std::string::npos);
  }
}

TEST(GnutlsLayoutTest, SniffsTheVersionString) {
  EXPECT_EQ(
      sniff_gnutls_version_in_bytes(std::string_view("x\0Enabled GnuTLS 3.7.9 logging...\0", 34)),
      "3.7.9");
  EXPECT_EQ(sniff_gnutls_version_in_bytes("Enabled GnuTLS 3.8.10 logging"), "3.8.10");
  EXPECT_EQ(sniff_gnutls_version_in_bytes("GnuTLS 3.7.9"), std::nullopt);
  EXPECT_EQ(sniff_gnutls_version_in_bytes(""), std::nullopt);
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
  auto g = gnutls_config_from_json(nlohmann::json{{"capturemode", "keylog"},
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
  EXPECT_FALSE(gnutls_config_from_json(nlohmann::json{{"capturemode", "bogus"}}, defaults));
  EXPECT_FALSE(gnutls_config_from_json(nlohmann::json{{"gnutlspath", "/nonexistent"}}, defaults));
  EXPECT_FALSE(gnutls_config_from_json(nlohmann::json{{"nspr_path", "/x"}}, defaults));
  auto n =
      nss_config_from_json(nlohmann::json{{"nspr_path", "/nonexistent/libnspr4.so"}}, defaults);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().to_string().find("nspr_path"), std::string::npos);
  auto ok = nss_config_from_json(nlohmann::json::object(), defaults);
  ASSERT_TRUE(ok);
  EXPECT_EQ(static_cast<const NssConfig&>(**ok).nspr, "");
}

}  // namespace
}  // namespace ecapture::tlslib
