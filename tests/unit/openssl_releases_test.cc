// The layout check on the recorded accessors of real OpenSSL builds (tests/fixtures/
// openssl_releases, written by tests/openssl_releases/record_accessors.py): each release is
// accepted with its table row, and a wrong row is refused naming the instruction it read.
#include <gtest/gtest.h>

#include <elf.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "modules/openssl/code_offsets.h"
#include "modules/openssl/openssl_layouts.h"

namespace ecapture::openssl {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(ECAPTURE_TEST_FIXTURES) / "openssl_releases";

std::vector<uint8_t> unhex(std::string_view h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

struct Fixture {
  std::string version;
  Accessors code;
};

Fixture load(const std::string& name) {
  std::ifstream in(kDir / name);
  EXPECT_TRUE(in) << (kDir / name);
  const auto j = nlohmann::json::parse(in);
  Fixture f;
  f.version = j.at("version").get<std::string>();
  const std::string machine = j.at("machine").get<std::string>();
  f.code.machine = machine == "x86_64" ? EM_X86_64 : machine == "aarch64" ? EM_AARCH64 : 0;
  auto fn = [&](const char* symbol) -> std::optional<AccessorCode> {
    if (!j.at("functions").contains(symbol)) return std::nullopt;  // 1.0.2: SSL_get_session only
    const auto& e = j.at("functions").at(symbol);
    return AccessorCode{std::stoull(e.at("address").get<std::string>(), nullptr, 16),
                        unhex(e.at("code").get<std::string>())};
  };
  f.code.get_client_random = fn("SSL_get_client_random");
  f.code.get_session = fn("SSL_get_session");
  f.code.get_master_key = fn("SSL_SESSION_get_master_key");
  return f;
}

struct Release {
  const char* fixture;
  const char* row;            // the row layout_for_version picks for the fixture's version
  const char* forced;         // pre-releases: refused by name; this --ssl_version forces `row`
  const char* wrong_version;  // a release whose row must be refused on this build
  std::vector<std::string> refusal;  // exactly what the check says about the wrong row
};

// Expected values were read off `objdump -d -M intel` of each build, not from the decoder.
const std::vector<Release>& releases() {
  static const std::vector<Release> kReleases = {
      // Debian 12's libssl3 3.0.19-1~deb12u2 (the library itself).
      {"3.0.19-x86_64.json", "openssl 3.0.13", nullptr, "3.2.0",
       {"client_random at 0x160 in SSL_get_client_random (`lea rsi, [rdi + 0x160]` at 0x38130), "
        "the table says 0x140",
        "session at 0x918 in SSL_get_session (`mov rax, qword ptr [rdi + 0x918]` at 0x40120), "
        "the table says 0x880"}},
      // 3.0.12 reads the session where 3.0.11 and 3.0.13 do.
      {"3.0.11-x86_64.json", "openssl 3.0.0", nullptr, "3.2.0",
       {"client_random at 0x160 in SSL_get_client_random (`lea rsi, [rdi + 0x160]` at 0x4e00), "
        "the table says 0x140",
        "session at 0x918 in SSL_get_session (`mov rax, qword ptr [rdi + 0x918]` at 0x4b0), "
        "the table says 0x880"}},
      {"3.0.12-x86_64.json", "openssl 3.0.0", nullptr, "3.5.0",
       {"client_random at 0x160 in SSL_get_client_random (`lea rsi, [rdi + 0x160]` at 0x4e00), "
        "the table says 0x188",
        "session at 0x918 in SSL_get_session (`mov rax, qword ptr [rdi + 0x918]` at 0x4b0), "
        "the table says 0x900"}},
      {"3.0.13-x86_64.json", "openssl 3.0.13", nullptr, "3.2.4",
       {"client_random at 0x160 in SSL_get_client_random (`lea rsi, [rdi + 0x160]` at 0x4e30), "
        "the table says 0x148",
        "session at 0x918 in SSL_get_session (`mov rax, qword ptr [rdi + 0x918]` at 0x4b0), "
        "the table says 0x888"}},
      {"3.1.7-x86_64.json", "openssl 3.1.0", nullptr, "3.2.0",
       {"client_random at 0x160 in SSL_get_client_random (`lea rsi, [rdi + 0x160]` at 0x4e00), "
        "the table says 0x140",
        "session at 0x918 in SSL_get_session (`mov rax, qword ptr [rdi + 0x918]` at 0x7d0), "
        "the table says 0x880"}},
      // 3.2+: SSL_CONNECTION_FROM_SSL is inlined with its QUIC branch (a load at 0x40) first.
      {"3.2.0-x86_64.json", "openssl 3.2.0", nullptr, "3.2.4",
       {"client_random at 0x140 in SSL_get_client_random (`lea r8, [rdi + 0x140]` at 0x6cb8), "
        "the table says 0x148",
        "session at 0x880 in SSL_get_session (`mov rax, qword ptr [rdi + 0x880]` at 0x3ab), "
        "the table says 0x888"}},
      {"3.2.3-x86_64.json", "openssl 3.2.0", nullptr, "3.2.4",
       {"client_random at 0x140 in SSL_get_client_random (`lea r8, [rdi + 0x140]` at 0x6c88), "
        "the table says 0x148",
        "session at 0x880 in SSL_get_session (`mov rax, qword ptr [rdi + 0x880]` at 0x73b), the "
        "table says 0x888"}},
      // A full build's libssl.so.3 (keys decrypted by tshark with it, tests/openssl_releases).
      {"3.2.5-x86_64.json", "openssl 3.2.4", nullptr, "3.2.0",
       {"client_random at 0x148 in SSL_get_client_random (`lea r8, [rdi + 0x148]` at 0x3d6f8), "
        "the table says 0x140",
        "session at 0x888 in SSL_get_session (`mov rax, qword ptr [rdi + 0x888]` at 0x4664b), "
        "the table says 0x880"}},
      {"3.3.2-x86_64.json", "openssl 3.3.0", nullptr, "3.3.3",
       {"client_random at 0x140 in SSL_get_client_random (`lea r8, [rdi + 0x140]` at 0x6ce8), "
        "the table says 0x148",
        "session at 0x880 in SSL_get_session (`mov rax, qword ptr [rdi + 0x880]` at 0x73b), the "
        "table says 0x888"}},
      {"3.3.3-x86_64.json", "openssl 3.3.3", nullptr, "3.3.0",
       {"client_random at 0x148 in SSL_get_client_random (`lea r8, [rdi + 0x148]` at 0x6d48), "
        "the table says 0x140",
        "session at 0x888 in SSL_get_session (`mov rax, qword ptr [rdi + 0x888]` at 0x73b), the "
        "table says 0x880"}},
      {"3.4.0-x86_64.json", "openssl 3.4.0", nullptr, "3.4.1",
       {"client_random at 0x140 in SSL_get_client_random (`lea r8, [rdi + 0x140]` at 0x6ce8), "
        "the table says 0x148",
        "session at 0x880 in SSL_get_session (`mov rax, qword ptr [rdi + 0x880]` at 0x73b), the "
        "table says 0x888"}},
      {"3.4.1-x86_64.json", "openssl 3.4.1", nullptr, "3.4.0",
       {"client_random at 0x148 in SSL_get_client_random (`lea r8, [rdi + 0x148]` at 0x6d48), "
        "the table says 0x140",
        "session at 0x888 in SSL_get_session (`mov rax, qword ptr [rdi + 0x888]` at 0x73b), the "
        "table says 0x880"}},
      // 3.5+: the QUIC side of the conversion is a call.
      {"3.5.3-x86_64.json", "openssl 3.5.0", nullptr, "3.4.1",
       {"client_random at 0x188 in SSL_get_client_random (`lea rsi, [rdi + 0x188]` at 0x795d), "
        "the table says 0x148",
        "session at 0x900 in SSL_get_session (`mov rax, qword ptr [rdi + 0x900]` at 0x750), the "
        "table says 0x888"}},
      // 1.1.1: the s3 state is a pointer.
      {"1.1.1w-x86_64.json", "openssl 1.1.1j", nullptr, "3.0.0",
       {"s3 at 0xa8 in SSL_get_client_random (`mov rdi, qword ptr [rdi + 0xa8]` at 0x4d90), the "
        "table says 0x0",
        "client_random at 0xb8 in SSL_get_client_random (`lea rsi, [rdi + 0xb8]` at 0x4d9b), the "
        "table says 0x160",
        "session at 0x510 in SSL_get_session (`mov rax, qword ptr [rdi + 0x510]` at 0x60), the "
        "table says 0x918"}},
      {"3.6.0-beta1-x86_64.json", "openssl 3.6.0", "3.6.0", "3.4.1",
       {"client_random at 0x188 in SSL_get_client_random (`lea rsi, [rdi + 0x188]` at 0x797d), "
        "the table says 0x148",
        "session at 0x900 in SSL_get_session (`mov rax, qword ptr [rdi + 0x900]` at 0x760), the "
        "table says 0x888"}},
      // 1.1.0 and 1.0.2 (TLS 1.2 only); 1.0.2 has no SSL_get_client_random or
      // SSL_SESSION_get_master_key, so only the session is checked there.
      {"1.1.0l-x86_64.json", "openssl 1.1.0a", nullptr, "1.1.1w",
       {"s3 at 0x90 in SSL_get_client_random (`mov rdi, qword ptr [rdi + 0x90]` at 0x4630), the "
        "table says 0xa8",
        "client_random at 0xb0 in SSL_get_client_random (`lea rsi, [rdi + 0xb0]` at 0x463b), the "
        "table says 0xb8",
        "session at 0x178 in SSL_get_session (`mov rax, qword ptr [rdi + 0x178]` at 0x60), the "
        "table says 0x510",
        "master_key at 0x8 in SSL_SESSION_get_master_key (`lea rsi, [rax + 8]` at 0x47a6), the "
        "table says 0x50"}},
      {"1.0.2u-x86_64.json", "openssl 1.0.2a", nullptr, "1.1.0l",
       {"session at 0x130 in SSL_get_session (`mov rax, qword ptr [rdi + 0x130]` at 0x60), the "
        "table says 0x178"}},
  };
  return kReleases;
}

TEST(OpenSslReleasesTest, EveryFixtureIsExercised) {
  std::set<std::string> listed;
  for (const auto& r : releases()) listed.insert(r.fixture);
  std::set<std::string> present;
  for (const auto& e : fs::directory_iterator(kDir)) {
    if (e.path().extension() == ".json") present.insert(e.path().filename().string());
  }
  EXPECT_EQ(listed, present);
}

TEST(OpenSslReleasesTest, EachReleaseIsAcceptedWithItsRow) {
  for (const auto& r : releases()) {
    SCOPED_TRACE(r.fixture);
    const Fixture f = load(r.fixture);
    if (r.forced != nullptr) {
      auto refused = layout_for_version(f.version);
      ASSERT_FALSE(refused);
      EXPECT_NE(refused.error().message.find("OpenSSL " + f.version + " is a pre-release"),
                std::string::npos);
    }
    auto row = layout_for_version(r.forced != nullptr ? r.forced : f.version);
    ASSERT_TRUE(row) << row.error().message;
    EXPECT_EQ(row->name, r.row);
    const LayoutCheck c = check_openssl_layout(f.code, row->layout);
    EXPECT_EQ(c.mismatches, std::vector<std::string>{});
    // Every field whose accessor the build has is confirmed.
    std::vector<std::string> fields;
    if (f.code.get_client_random) fields = {"s3", "client_random"};
    if (f.code.get_session) fields.push_back("session");
    if (f.code.get_master_key) fields.push_back("master_key");
    EXPECT_EQ(c.checked, fields);
  }
}

TEST(OpenSslReleasesTest, AWrongRowIsRefusedNamingTheInstruction) {
  for (const auto& r : releases()) {
    SCOPED_TRACE(r.fixture);
    const Fixture f = load(r.fixture);
    auto wrong = layout_for_version(r.wrong_version);
    ASSERT_TRUE(wrong) << wrong.error().message;
    EXPECT_EQ(check_openssl_layout(f.code, wrong->layout).mismatches, r.refusal);
  }
}

// arm64 has no real build here: clang 14 -O2 --target=aarch64-linux-gnu of a replica of 3.2's
// SSL_get_session and SSL_get_client_random (SSL_CONNECTION_FROM_CONST_SSL inlined, session at
// 0x888, client_random at 0x148, QUIC `tls` at 0x40). The QUIC branch comes first in the code.
TEST(OpenSslReleasesTest, Arm64QuicBranchIsNotTheConnectionPath) {
  Accessors a;
  a.machine = EM_AARCH64;
  a.get_session = AccessorCode{
      0x1000, unhex("400100b4080040b9090500513f09007162000054002040f90200001488000035400000b4004444"
                    "f9c0035fd6e0031faac0035fd6")};
  a.get_client_random = AccessorCode{
      0x2000, unhex("fd7bbea9f30b00f9fd030091600200b4080040b9090500513f09007162000054002040f90200"
                    "001488010035600100b4e20100b45f8000f1080480525330889a08200591e00301aae10308aa"
                    "e20313aa0000009402000014f3031faae00313aaf30b40f9fd7bc2a8c0035fd613048052fbff"
                    "ff17")};
  auto session = session_read_from_code(a.get_session->code, 0x1000, EM_AARCH64);
  ASSERT_TRUE(session);
  EXPECT_EQ(session->offset, 0x888u);
  EXPECT_EQ(session->instruction, "ldr x0, [x0, #0x888]");
  EXPECT_EQ(session->address, 0x1024u);
  auto cr = client_random_reads_from_code(a.get_client_random->code, 0x2000, EM_AARCH64);
  ASSERT_TRUE(cr);
  EXPECT_FALSE(cr->s3);
  EXPECT_EQ(cr->client_random.offset, 0x148u);
  EXPECT_EQ(cr->client_random.instruction, "add x8, x0, #0x148");
  EXPECT_EQ(cr->client_random.address, 0x2040u);

  auto right = layout_for_version("3.2.5");
  ASSERT_TRUE(right);
  EXPECT_EQ(check_openssl_layout(a, right->layout).mismatches, std::vector<std::string>{});
  auto wrong = layout_for_version("3.2.0");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(check_openssl_layout(a, wrong->layout).mismatches,
            (std::vector<std::string>{
                "client_random at 0x148 in SSL_get_client_random (`add x8, x0, #0x148` at "
                "0x2040), the table says 0x140",
                "session at 0x888 in SSL_get_session (`ldr x0, [x0, #0x888]` at 0x1024), the "
                "table says 0x880"}));
}

// The branch decisions follow the values they test: a type other than 0 is not assumed, and a
// branch on an unknown value is explored both ways (fall-through first).
TEST(OpenSslReleasesTest, OnlyTheConnectionTypeIsAssumed) {
  // test rdi, rdi; je +0x10; mov edx, [rdi]; cmp edx, 1; jne +4; mov rdi, [rdi+0x40];
  // mov rax, [rdi+0x888]; ret
  // With type 0, `cmp edx, 1; jne` is taken past the QUIC load.
  auto code = unhex("4885ff74108b1783fa017504488b7f40488b8788080000c3");
  auto r = session_read_from_code(code, 0, EM_X86_64);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->offset, 0x888u);
  // mov rdx, [rsi]; test edx, edx; je +4; mov rax, [rdi+0x10]; mov rax, [rdi+0x20]; ret
  // The tested value is another argument's memory: unknown, so the fall-through (0x10) comes
  // first, and the other way is only a second path.
  auto unknown = unhex("8b1685d27404488b4710488b4720c3");
  auto u = session_read_from_code(unknown, 0, EM_X86_64);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->offset, 0x10u);
}

}  // namespace
}  // namespace ecapture::openssl
