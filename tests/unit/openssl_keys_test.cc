// Layout selection per OpenSSL version, HKDF-Expand-Label against RFC 8448, key log lines.
#include <gtest/gtest.h>

#include <cstring>

#include <elf.h>

#include "modules/openssl/code_offsets.h"
#include "modules/openssl/openssl_keys.h"
#include "modules/openssl/openssl_layouts.h"

namespace ecapture::openssl {
namespace {

std::vector<uint8_t> unhex(std::string_view h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(OpenSslLayoutTest, EveryKnownVersionMapsToItsFamily) {
  struct Case {
    const char* version;
    const char* family;
    uint32_t session;
    uint32_t early;
  };
  const Case cases[] = {
      {"1.0.2", "openssl 1.0.2a", 0x130, 0},     {"1.0.2u", "openssl 1.0.2a", 0x130, 0},
      {"1.1.0l", "openssl 1.1.0a", 0x178, 0},    {"1.1.1a", "openssl 1.1.1a", 0x510, 0x134},
      {"1.1.1c", "openssl 1.1.1b", 0x508, 0x134}, {"1.1.1d", "openssl 1.1.1d", 0x510, 0x13c},
      {"1.1.1w", "openssl 1.1.1j", 0x510, 0x13c}, {"3.0.0", "openssl 3.0.0", 0x918, 0x544},
      {"3.0.11", "openssl 3.0.0", 0x918, 0x544},  {"3.0.12", "openssl 3.0.0", 0x918, 0x544},
      {"3.0.19", "openssl 3.0.13", 0x918, 0x544}, {"3.0.22", "openssl 3.0.13", 0x918, 0x544},
      {"3.1.8", "openssl 3.1.0", 0x918, 0x544},   {"3.2.2", "openssl 3.2.0", 0x880, 0x4fc},
      {"3.2.5", "openssl 3.2.4", 0x888, 0x504},   {"3.3.1", "openssl 3.3.0", 0x880, 0x4fc},
      {"3.3.7", "openssl 3.3.3", 0x888, 0x504},   {"3.4.0", "openssl 3.4.0", 0x880, 0x4fc},
      {"3.4.6", "openssl 3.4.1", 0x888, 0x504},   {"3.5.4", "openssl 3.5.0", 0x900, 0x57c},
      {"3.6.2", "openssl 3.6.0", 0x900, 0x57c},   {"4.0.1", "openssl 4.0.0", 0x900, 0x57c},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.version);
    auto l = layout_for_version(c.version);
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->name, c.family);
    EXPECT_EQ(l->layout.ssl_session, c.session);
    EXPECT_EQ(l->layout.ssl_early_secret, c.early);
  }
  EXPECT_EQ(layout_for_version("3.0.19")->layout.s3_client_random, 0x160u);
  EXPECT_EQ(layout_for_version("3.0.19")->layout.ssl_s3, 0u);  // inline
  EXPECT_EQ(layout_for_version("1.1.1w")->layout.ssl_s3, 0xa8u);
}

TEST(OpenSslLayoutTest, UnknownVersionsAreRefusedNotGuessed) {
  for (const char* v : {"3.0.23", "3.7.0", "1.1.1x", "2.0.0", "3.5.8", "4.1.0", "0.9.8"}) {
    SCOPED_TRACE(v);
    auto l = layout_for_version(v);
    ASSERT_FALSE(l);
    EXPECT_NE(l.error().message.find(std::string("OpenSSL ") + v), std::string::npos);
    EXPECT_NE(l.error().message.find("--ssl_version"), std::string::npos);
  }
  EXPECT_FALSE(layout_for_version("garbage"));
}

TEST(OpenSslLayoutTest, PreReleasesAreRefusedByName) {
  for (const char* v : {"3.6.0-beta1", "3.2.0-alpha2", "1.1.0-pre6", "3.4.0-dev"}) {
    SCOPED_TRACE(v);
    auto l = layout_for_version(v);
    ASSERT_FALSE(l);
    const std::string release(std::string_view(v).substr(0, std::string_view(v).find('-')));
    EXPECT_EQ(l.error().message,
              fmt::format("OpenSSL {} is a pre-release: no struct layout is known for it, so its "
                          "keys cannot be read (text capture works with any version). If it "
                          "shares the layout of a release, force that row with --ssl_version, "
                          "e.g. --ssl_version \"openssl {}\"", v, release));
  }
  // --ssl_version naming the release forces its row.
  EXPECT_EQ(layout_for_version(*parse_ssl_version_flag("openssl 3.6.0"))->name, "openssl 3.6.0");
}

TEST(OpenSslLayoutTest, SslVersionFlag) {
  EXPECT_EQ(*parse_ssl_version_flag("openssl 3.0.12"), "3.0.12");
  EXPECT_EQ(*parse_ssl_version_flag("OpenSSL 1.1.1w"), "1.1.1w");
  EXPECT_EQ(*parse_ssl_version_flag(" 3.2.4 "), "3.2.4");
  for (const char* b : {"boringssl", "BoringSSL NA", "boringssl 1.1.1", "boringssl_a_13",
                        "boringssl_a_14", "boringssl_a_15", "boringssl_a_16", "android_default"}) {
    SCOPED_TRACE(b);
    EXPECT_EQ(*parse_ssl_version_flag(b), kBoringSsl);
  }
  EXPECT_NE(parse_ssl_version_flag("boringssl_a_99").error().message.find("boringssl_a_99"),
            std::string::npos);
  EXPECT_NE(parse_ssl_version_flag("nonsense").error().message.find("--ssl_version"),
            std::string::npos);
}

TEST(OpenSslLayoutTest, BoringSslReadsOnlyTheClientRandom) {
  auto l = layout_for_version(kBoringSsl);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->layout.boringssl, 1u);
  EXPECT_EQ(l->layout.ssl_s3, 0x30u);
  EXPECT_EQ(l->layout.s3_client_random, 0x30u);
}

// SSL_get_client_random of Debian's android-libboringssl 13.0.0+r24 (x86-64), recorded bytes.
TEST(BoringSslOffsetsTest, DecodesX86ClientRandomAccess) {
  auto code = unhex("534885d274254883fa20bb20000000480f42da488b47304883c0304889f74889c64889dae8474a"
                    "0100eb05bb200000004889d85bc3");
  auto o = client_random_offsets_from_code(code, 0x4f680, EM_X86_64);
  ASSERT_TRUE(o);
  EXPECT_EQ(*o, (ClientRandomOffsets{0x30, 0x30}));
}

TEST(BoringSslOffsetsTest, DecodesArm64AndLeaForms) {
  // ldr x8, [x0, #0x30]; add x1, x8, #0x30
  auto arm = unhex("081840f901c10091");
  auto a = client_random_offsets_from_code(arm, 0x1000, EM_AARCH64);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (ClientRandomOffsets{0x30, 0x30}));
  // mov rax, [rdi+0x38]; lea rsi, [rax+0x40]
  auto lea = unhex("488b4738488d7040");
  auto x = client_random_offsets_from_code(lea, 0x1000, EM_X86_64);
  ASSERT_TRUE(x);
  EXPECT_EQ(*x, (ClientRandomOffsets{0x38, 0x40}));
}

// Debian 12's libssl.so.3 (3.0.x), recorded bytes: the 3.0 layout row must match them.
TEST(OpenSslCodeOffsetsTest, DecodesOpenSsl30Accessors) {
  auto session = unhex("488b871809000031ffc3");  // mov rax, [rdi+0x918]; xor edi, edi; ret
  EXPECT_EQ(session_offset_from_code(session, 0x40160, EM_X86_64), 0x918u);
  auto cr = unhex("4889f1b8200000004885d2745a4839c2488db760010000480f46c289c283f808725e488b976001"
                  "00004c8d41084983e0f848891189c2488b7c16f848897c11f8");
  auto c = client_random_offsets_from_code(cr, 0x38160, EM_X86_64);
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, (ClientRandomOffsets{0, 0x160}));  // inline s3
  // push rbx; mov rax, rdi; mov rbx, [rdi+8]; ...; mov rdi, rsi; lea rsi, [rax+0x50]
  auto mk = unhex("534889f8488b5f084885d274164839d34889f7488d7050480f47da4889dae8cd7bfeff4889d85b");
  EXPECT_EQ(master_key_offset_from_code(mk, 0x38300, EM_X86_64), 0x50u);
  const auto row = layout_for_version("3.0.19")->layout;
  EXPECT_EQ(row.ssl_session, 0x918u);
  EXPECT_EQ(row.s3_client_random, 0x160u);
  EXPECT_EQ(row.session_master_key, 0x50u);
}

TEST(OpenSslCodeOffsetsTest, ArgumentCopiesAndOverwritesAreTracked) {
  // mov rax, rdi; xor edi, edi; mov rdx, [rdi+0x10] (not the argument any more); mov rdx,
  // [rax+0x20]; ret
  auto code = unhex("4889f831ff488b5710488b5020c3");
  EXPECT_EQ(session_offset_from_code(code, 0, EM_X86_64), 0x20u);
  // arm64: add x1, x0, #0x50 (master key, inline address)
  EXPECT_EQ(master_key_offset_from_code(unhex("01400191"), 0, EM_AARCH64), 0x50u);
  // arm64: ldr x0, [x0, #0x918]
  EXPECT_EQ(session_offset_from_code(unhex("008c44f9"), 0, EM_AARCH64), 0x918u);
}

TEST(BoringSslOffsetsTest, OtherShapesGiveNothing) {
  // mov rax, [rdi+0x30]; mov rax, [rax]; ret: the register is overwritten before any offset.
  EXPECT_FALSE(client_random_offsets_from_code(unhex("488b47304889c0c3"), 0, EM_X86_64));
  EXPECT_FALSE(client_random_offsets_from_code(unhex("c3"), 0, EM_X86_64));
  EXPECT_FALSE(client_random_offsets_from_code(unhex("488b4730"), 0, EM_386));
}

TEST(BoringSslSecretsTest, LabelsMapToKeylogLabels) {
  openssl_secret_event e{};
  e.kind = TLS_RECORD_SECRET;
  for (int i = 0; i < 32; ++i) e.client_random[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 48; ++i) e.secret[i] = static_cast<uint8_t>(0xa0 + (i & 0xf));
  auto line_for = [&](std::string_view label, uint8_t n) {
    std::memset(e.label, 0, sizeof(e.label));
    std::memcpy(e.label, label.data(), label.size());
    e.label_len = static_cast<uint8_t>(label.size());
    e.secret_len = n;
    return secret_keylog_line(e);
  };
  auto l = line_for("c hs traffic", 32);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->to_string(),
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET "
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f "
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  EXPECT_EQ(line_for("key expansion", 48)->label, "CLIENT_RANDOM");
  EXPECT_EQ(line_for("key expansion", 48)->secret.size(), 96u);
  EXPECT_EQ(line_for("s hs traffic", 48)->label, "SERVER_HANDSHAKE_TRAFFIC_SECRET");
  EXPECT_EQ(line_for("c ap traffic", 32)->label, "CLIENT_TRAFFIC_SECRET_0");
  EXPECT_EQ(line_for("s ap traffic", 32)->label, "SERVER_TRAFFIC_SECRET_0");
  EXPECT_EQ(line_for("exp master", 32)->label, "EXPORTER_SECRET");
  EXPECT_EQ(line_for("c e traffic", 32)->label, "CLIENT_EARLY_TRAFFIC_SECRET");
  for (const char* skipped : {"res master", "traffic upd", "ext binder", "c hs traffi"}) {
    EXPECT_FALSE(line_for(skipped, 32)) << skipped;
  }
  EXPECT_FALSE(line_for("c hs traffic", 0));
}

// RFC 8448 §3 (simple 1-RTT handshake): handshake secret + transcript hash -> traffic secrets.
TEST(Tls13DeriveTest, Rfc8448HandshakeTrafficSecrets) {
  auto hs = unhex("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac");
  auto hash = unhex("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8");
  auto c = hkdf_expand_label(hs, "c hs traffic", hash, 32);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(to_hex(*c), "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21");
  auto s = hkdf_expand_label(hs, "s hs traffic", hash, 32);
  ASSERT_TRUE(s);
  EXPECT_EQ(to_hex(*s), "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38");
}

TEST(KeylogLinesTest, Tls12AndTls13InFixedOrder) {
  openssl_keys_event k{};
  for (int i = 0; i < 32; ++i) k.client_random[i] = static_cast<uint8_t>(i);
  k.version = 0x0303;
  std::memset(k.master_key, 0xab, sizeof(k.master_key));
  auto l12 = keylog_lines(k);
  ASSERT_TRUE(l12);
  ASSERT_EQ(l12->size(), 1u);
  std::string ab;
  for (int i = 0; i < 48; ++i) ab += "ab";
  EXPECT_EQ((*l12)[0].to_string(), "CLIENT_RANDOM " + to_hex(k.client_random) + " " + ab);

  k.version = 0x0304;
  auto hs = unhex("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac");
  auto hash = unhex("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8");
  std::memcpy(k.handshake_secret, hs.data(), 32);
  std::memcpy(k.handshake_traffic_hash, hash.data(), 32);
  std::memset(k.client_app_traffic_secret, 0x11, 32);  // SHA-256 suite: 32 bytes used
  std::memset(k.server_app_traffic_secret, 0x22, 32);
  std::memset(k.exporter_master_secret, 0x33, 32);
  auto l13 = keylog_lines(k);
  ASSERT_TRUE(l13) << l13.error().message;
  std::vector<std::string> labels;
  for (const auto& l : *l13) labels.push_back(l.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                              "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                              "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
                                              "EXPORTER_SECRET"}));
  EXPECT_EQ((*l13)[0].secret, "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21");
  EXPECT_EQ((*l13)[2].secret, std::string(64, '1'));

  std::memset(k.client_app_traffic_secret + 32, 0x44, 16);  // SHA-384: 48 bytes
  EXPECT_EQ((*keylog_lines(k))[2].secret.size(), 96u);
}

TEST(KeylogLinesTest, EmptySecretsAreRejected) {
  openssl_keys_event k{};
  k.version = 0x0303;
  EXPECT_FALSE(keylog_lines(k));
  k.version = 0x0304;
  EXPECT_FALSE(keylog_lines(k));
}

}  // namespace
}  // namespace ecapture::openssl
