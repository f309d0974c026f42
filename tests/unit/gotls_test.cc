// Unit tests of the Go binary analysis (src/elf/go_binary) and the gotls module's decoding,
// checked against `go tool nm` / `go tool objdump` on test programs built here with Debian's Go.
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "elf/go_binary.h"
#include "modules/gotls/gotls_config.h"
#include "modules/gotls/gotls_module.h"
#include "registry_json.h"

namespace ecapture::gotls {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status != nullptr) *status = st;
  return out;
}

// Builds the test programs once into the build directory (rebuilt when the source changes).
class GoPrograms : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(ECAPTURE_TEST_BUILD_DIR) / "gotls-fixtures";
    fs::create_directories(dir_);
    const fs::path src = fs::path(ECAPTURE_TEST_FIXTURES) / "gotls";
    const std::string env = "cd " + dir_.string() + " && GOCACHE=" + (dir_ / "gocache").string() +
                            " HOME=" + dir_.string() + " GOFLAGS= GO111MODULE=off ";
    struct V {
      const char* name;
      const char* flags;
      const char* file;
    };
    for (V v : {V{"default", "", "main.go"}, V{"stripped", "-ldflags='-s -w'", "main.go"},
                V{"pie", "-buildmode=pie", "main.go"}, V{"static", "", "main.go"},
                V{"nocrypto", "", "nocrypto.go"}}) {
      fs::path out = dir_ / v.name;
      fs::path in = src / v.file;
      if (fs::exists(out) && fs::last_write_time(out) > fs::last_write_time(in)) continue;
      std::string cmd = env + (std::string(v.name) == "static" ? "CGO_ENABLED=0 " : "") +
                        "go build " + v.flags + " -o " + out.string() + " " + in.string() + " 2>&1";
      int st = 0;
      std::string log = run(cmd, &st);
      if (st != 0) build_error_ += std::string(v.name) + ": " + log;
    }
    go_version_ = run("go env GOVERSION");
    while (!go_version_.empty() && go_version_.back() == '\n') go_version_.pop_back();
  }
  void SetUp() override { ASSERT_TRUE(build_error_.empty()) << build_error_; }

  static std::string path(const char* name) { return (dir_ / name).string(); }
  // Address of `sym` per `go tool nm` of `bin`.
  static uint64_t nm_address(const std::string& bin, const std::string& sym) {
    std::string out = run("go tool nm " + bin);
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string addr, type, name;
      f >> addr >> type;
      std::getline(f >> std::ws, name);
      if (name == sym) return std::stoull(addr, nullptr, 16);
    }
    return 0;
  }
  // Virtual addresses of the RET instructions of `sym` per `go tool objdump`.
  static std::vector<uint64_t> objdump_rets(const std::string& bin, const std::string& sym) {
    std::string re = sym;
    std::string quoted;
    for (char c : re) {
      if (std::strchr("().*", c) != nullptr) quoted += '\\';
      quoted += c;
    }
    std::string out = run("go tool objdump -s '^" + quoted + "$' " + bin);
    std::vector<uint64_t> rets;
    std::istringstream in(out);
    std::string line;
    std::regex ret_line(R"(^\s*\S*:\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+RET\b)");
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_search(line, m, ret_line)) rets.push_back(std::stoull(m[1], nullptr, 16));
    }
    return rets;
  }

  // Address of the instruction after the stack check (the first JBE/JLS) of `sym`, from
  // go tool objdump.
  static uint64_t objdump_after_stack_check(const std::string& bin, const std::string& sym) {
    std::string quoted;
    for (char c : sym) {
      if (std::strchr("().*", c) != nullptr) quoted += '\\';
      quoted += c;
    }
    std::istringstream in(run("go tool objdump -s '^" + quoted + "$' " + bin));
    std::regex insn(R"(^\s*\S*:\d+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(\S+))");
    std::smatch m;
    std::string line;
    bool after_check = false;
    while (std::getline(in, line)) {
      if (!std::regex_search(line, m, insn)) continue;
      if (after_check) return std::stoull(m[1], nullptr, 16);
      after_check = m[2] == "JBE" || m[2] == "JLS";
    }
    return 0;
  }

  static inline fs::path dir_;
  static inline std::string build_error_;
  static inline std::string go_version_;
};

TEST_F(GoPrograms, VersionAndLineTableOfEveryVariant) {
  ASSERT_FALSE(go_version_.empty());
  for (const char* v : {"default", "stripped", "pie", "static"}) {
    SCOPED_TRACE(v);
    auto bin = elf::GoBinary::open(path(v));
    ASSERT_TRUE(bin) << bin.error().to_string();
    EXPECT_EQ((*bin)->version().text, go_version_);
    EXPECT_TRUE((*bin)->register_abi());
    EXPECT_EQ((*bin)->pclntab_magic(), (*bin)->version().at_least(1, 20) ? 0xfffffff1u : 0xfffffff0u);
    EXPECT_GT((*bin)->pclntab_functions(), 1000u);
    EXPECT_EQ((*bin)->has_symtab(), std::string(v) != "stripped");
    EXPECT_EQ((*bin)->is_pie(), std::string(v) == "pie");
  }
}

TEST_F(GoPrograms, PclntabLookupMatchesGoToolNm) {
  // The stripped binary is compared with its unstripped twin (same code, same addresses).
  for (auto [v, twin] : {std::pair{"default", "default"}, {"stripped", "default"},
                         {"pie", "pie"}, {"static", "static"}}) {
    SCOPED_TRACE(v);
    auto bin = elf::GoBinary::open(path(v));
    ASSERT_TRUE(bin) << bin.error().to_string();
    for (const char* fn : {kWriteRecordLocked, kConnRead, kWriteKeyLog, kClientHandshake}) {
      SCOPED_TRACE(fn);
      uint64_t want = nm_address(path(twin), fn);
      ASSERT_NE(want, 0u);
      auto f = (*bin)->find_in_pclntab(fn);
      ASSERT_TRUE(f.has_value());
      EXPECT_EQ(f->entry, want);
      EXPECT_GT(f->size, 16u);
      auto g = (*bin)->find_function(fn);
      ASSERT_TRUE(g.has_value());
      EXPECT_EQ(g->entry, want);
      EXPECT_EQ(g->file_offset, f->file_offset);
      EXPECT_EQ(g->from_symtab, std::string(v) != "stripped");
      // Non-PIE Go binaries map .text at 0x400000 + file offset; the PIE one the same way.
      EXPECT_EQ(f->file_offset, want - 0x400000);
    }
    EXPECT_FALSE((*bin)->find_in_pclntab("crypto/tls.(*Conn).NoSuchFunction").has_value());
  }
}

TEST_F(GoPrograms, RetOffsetsMatchGoToolObjdump) {
  for (auto [v, twin] : {std::pair{"default", "default"}, {"stripped", "default"},
                         {"pie", "pie"}, {"static", "static"}}) {
    SCOPED_TRACE(v);
    auto bin = elf::GoBinary::open(path(v));
    ASSERT_TRUE(bin) << bin.error().to_string();
    auto f = (*bin)->find_function(kConnRead);
    ASSERT_TRUE(f.has_value());
    auto rets = (*bin)->ret_offsets(*f);
    ASSERT_TRUE(rets) << rets.error().to_string();
    std::vector<uint64_t> want;
    for (uint64_t a : objdump_rets(path(twin), kConnRead)) want.push_back(a - f->entry + f->file_offset);
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(*rets, want);
    if ((*bin)->version().text == "go1.19.8") {
      EXPECT_EQ(rets->size(), 7u);
    }
  }
}

TEST_F(GoPrograms, TargetsPerMode) {
  auto text = find_targets(path("stripped"), CaptureMode::kText);
  ASSERT_TRUE(text) << text.error().to_string();
  EXPECT_TRUE(text->stripped);
  // Past the stack-growth check (morestack re-enters at the entry: no double hits).
  const uint64_t write_body = objdump_after_stack_check(path("default"), kWriteRecordLocked);
  ASSERT_NE(write_body, 0u);
  EXPECT_GT(write_body, nm_address(path("default"), kWriteRecordLocked));
  EXPECT_LE(write_body, nm_address(path("default"), kWriteRecordLocked) + 16);
  EXPECT_EQ(text->write_record, write_body - 0x400000);
  EXPECT_EQ(text->read_entry, objdump_after_stack_check(path("default"), kConnRead) - 0x400000);
  auto keys = find_targets(path("pie"), CaptureMode::kKeylog);
  ASSERT_TRUE(keys) << keys.error().to_string();
  EXPECT_FALSE(keys->stripped);
  EXPECT_EQ(keys->write_key_log, objdump_after_stack_check(path("pie"), kWriteKeyLog) - 0x400000);
  EXPECT_EQ(keys->handshakes.size(), 2u);
  auto specs = GoTlsModule::probes(path("pie"), *text, CaptureMode::kText);
  ASSERT_EQ(specs.size(), 2 + text->read_rets.size());
  EXPECT_EQ(specs[0].program, "probe_gotls_write");
  EXPECT_EQ(specs[0].offset, text->write_record);
  EXPECT_TRUE(specs[0].symbol.empty());
  EXPECT_EQ(specs.back().program, "probe_gotls_read_ret");
  EXPECT_EQ(specs.back().offset, text->read_rets.back());
}

TEST_F(GoPrograms, HostWidePlanPerFile) {
  using Kind = tls::TargetPlan::Kind;
  for (const char* v : {"default", "stripped", "pie", "static"}) {
    tls::TargetPlan plan = plan_go_target(path(v), CaptureMode::kText);
    ASSERT_EQ(plan.kind, Kind::kHook) << v << ": " << plan.reason;
    auto want = find_targets(path(v), CaptureMode::kText);
    ASSERT_TRUE(want);
    EXPECT_EQ(plan.specs.size(), 2 + want->read_rets.size()) << v;
    EXPECT_EQ(plan.specs.front().binary, path(v));
    EXPECT_EQ(plan.specs.front().offset, want->write_record) << v;
    EXPECT_EQ(plan.info["library"], "Go crypto/tls");
    EXPECT_EQ(plan.info["version"], go_version_) << v;
    EXPECT_EQ(plan.info["functions_from"], std::string(v) == "stripped" ? ".gopclntab" : ".symtab");
  }
  EXPECT_EQ(plan_go_target(path("pie"), CaptureMode::kKeylog).specs.size(), 3u);
  // Not Go, Go without crypto/tls, no such file: no target, nothing to report.
  for (const std::string& p : {std::string("/bin/true"), path("nocrypto"), path("nope")}) {
    EXPECT_EQ(plan_go_target(p, CaptureMode::kText).kind, Kind::kNotTarget) << p;
  }
}

TEST(GoTlsHostWide, ExecutableTargetsOnePerFileWithItsProcesses) {
  // Two processes of one file and one of another, started here.
  std::vector<pid_t> kids;
  for (const char* exe : {"/bin/sleep", "/bin/sleep", "/usr/bin/tail"}) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (std::strcmp(exe, "/usr/bin/tail") == 0) {
        execl(exe, "tail", "-f", "/dev/null", static_cast<char*>(nullptr));
      }
      execl(exe, "sleep", "30", static_cast<char*>(nullptr));
      _exit(127);
    }
    kids.push_back(pid);
  }
  // Wait until each child runs its new executable.
  auto execd = [](pid_t pid, const char* exe) {
    for (int i = 0; i < 200; ++i) {
      char buf[256] = {};
      const std::string link = "/proc/" + std::to_string(pid) + "/exe";
      if (readlink(link.c_str(), buf, sizeof buf - 1) > 0 && fs::equivalent(buf, exe)) return true;
      usleep(10000);
    }
    return false;
  };
  const bool ready = execd(kids[0], "/bin/sleep") && execd(kids[1], "/bin/sleep") &&
                     execd(kids[2], "/usr/bin/tail");
  const std::vector<tls::Target> targets = executable_targets();
  for (pid_t k : kids) {
    kill(k, SIGKILL);
    waitpid(k, nullptr, 0);
  }
  ASSERT_TRUE(ready);
  auto find = [&](const char* exe) -> const tls::Target* {
    struct stat st {};
    if (stat(exe, &st) != 0) return nullptr;
    for (const auto& t : targets) {
      if (t.id.dev == st.st_dev && t.id.ino == st.st_ino) return &t;
    }
    return nullptr;
  };
  const tls::Target* sleep_t = find("/bin/sleep");
  const tls::Target* cat_t = find("/usr/bin/tail");
  ASSERT_NE(sleep_t, nullptr);
  ASSERT_NE(cat_t, nullptr);
  EXPECT_TRUE(sleep_t->pids.count(kids[0]) && sleep_t->pids.count(kids[1]));
  EXPECT_TRUE(cat_t->pids.count(kids[2]));
  EXPECT_TRUE(fs::equivalent(sleep_t->host_path, "/bin/sleep")) << sleep_t->host_path;
  size_t with_sleep = 0;
  for (const auto& t : targets) {
    with_sleep += t.pids.count(kids[0]);
    EXPECT_EQ(t.pids.count(getpid()), 0u) << t.path;  // ecapture's own executable is no target
  }
  EXPECT_EQ(with_sleep, 1u);
}

TEST_F(GoPrograms, BadInputErrors) {
  auto c = find_targets("/bin/true", CaptureMode::kText);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().to_string(), HasSubstr("is not a Go program"));
  auto nocrypto = find_targets(path("nocrypto"), CaptureMode::kText);
  ASSERT_FALSE(nocrypto);
  EXPECT_THAT(nocrypto.error().to_string(),
              HasSubstr("has no crypto/tls.(*Conn).writeRecordLocked: it does not use crypto/tls"));
  auto nokeys = find_targets(path("nocrypto"), CaptureMode::kKeylog);
  ASSERT_FALSE(nokeys);
  EXPECT_THAT(nokeys.error().to_string(), HasSubstr("has no crypto/tls.(*Config).writeKeyLog"));
  auto missing = find_targets(path("does-not-exist"), CaptureMode::kText);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().to_string(), HasSubstr("does-not-exist"));
  // Wrong architecture: the static binary with e_machine patched to the other 64-bit arch.
  std::string other = path("other-arch");
  fs::copy_file(path("static"), other, fs::copy_options::overwrite_existing);
  {
    std::fstream f(other, std::ios::in | std::ios::out | std::ios::binary);
    uint16_t m = elf::native_machine() == EM_X86_64 ? EM_AARCH64 : EM_X86_64;
    f.seekp(18);
    f.write(reinterpret_cast<const char*>(&m), 2);
  }
  auto arch = find_targets(other, CaptureMode::kText);
  fs::remove(other);
  ASSERT_FALSE(arch);
  EXPECT_THAT(arch.error().to_string(), HasSubstr("another CPU architecture"));
}

TEST(GoVersion, Parse) {
  auto v = elf::parse_go_version("go1.19.8");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 19);
  EXPECT_EQ(v->patch, 8);
  EXPECT_TRUE(v->at_least(1, 17));
  EXPECT_FALSE(v->at_least(1, 20));
  auto rc = elf::parse_go_version("go1.21rc2");
  ASSERT_TRUE(rc);
  EXPECT_EQ(rc->minor, 21);
  EXPECT_FALSE(elf::parse_go_version("devel +abc"));
}

TEST(GoBuildInfo, InlineAndPointerForms) {
  // Go 1.18+: flags bit 1, varint-prefixed version right after the 32-byte header.
  std::vector<uint8_t> d(64, 0);
  std::memcpy(d.data(), "\xff Go buildinf:", 14);
  d[14] = 8;
  d[15] = 2;
  d[32] = 8;
  std::memcpy(d.data() + 33, "go1.19.8", 8);
  auto none = [](uint64_t, size_t) { return std::vector<uint8_t>{}; };
  EXPECT_EQ(elf::buildinfo_version(d, none).value_or(""), "go1.19.8");
  // Go < 1.18: a pointer to a {ptr, len} string header.
  std::vector<uint8_t> old(32, 0);
  std::memcpy(old.data(), "\xff Go buildinf:", 14);
  old[14] = 8;
  old[15] = 0;
  uint64_t hdr = 0x1000;
  std::memcpy(old.data() + 16, &hdr, 8);
  auto mem = [](uint64_t a, size_t n) -> std::vector<uint8_t> {
    if (a == 0x1000 && n == 16) {
      std::vector<uint8_t> h(16);
      uint64_t p = 0x2000, l = 9;
      std::memcpy(h.data(), &p, 8);
      std::memcpy(h.data() + 8, &l, 8);
      return h;
    }
    if (a == 0x2000 && n == 9) return {'g', 'o', '1', '.', '1', '6', '.', '1', '5'};
    return {};
  };
  EXPECT_EQ(elf::buildinfo_version(old, mem).value_or(""), "go1.16.15");
  d[0] = 0;
  EXPECT_FALSE(elf::buildinfo_version(d, none).has_value());
}

TEST(GoArgs, RegisterAndStackMapping) {
  // writeKeyLog(cfg, label string, clientRandom, secret []byte) on amd64, register ABI: checked
  // live with bpftrace (label RBX/RCX, random RDI/RSI, secret R9/R10).
  std::map<int, std::string> want = {{GOTLS_KEYLOG_LABEL, "RBX"}, {GOTLS_KEYLOG_LABEL_LEN, "RCX"},
                                     {GOTLS_KEYLOG_RANDOM, "RDI"}, {GOTLS_KEYLOG_RANDOM_LEN, "RSI"},
                                     {GOTLS_KEYLOG_SECRET, "R9"}, {GOTLS_KEYLOG_SECRET_LEN, "R10"},
                                     {GOTLS_WRITE_TYPE, "RBX"}, {GOTLS_WRITE_DATA, "RCX"},
                                     {GOTLS_WRITE_LEN, "RDI"}, {0, "RAX"}};
  for (auto [word, reg] : want) {
    auto loc = elf::go_arg_location(EM_X86_64, true, word);
    EXPECT_TRUE(loc.in_register);
    EXPECT_EQ(loc.reg_name, reg) << "word " << word;
  }
  EXPECT_EQ(elf::go_arg_location(EM_AARCH64, true, GOTLS_KEYLOG_SECRET).reg_name, "X6");
  // Stack ABI: words follow the return address; Read's n sits after its 4 argument words.
  auto n = elf::go_arg_location(EM_X86_64, false, GOTLS_READ_RESULT_N);
  EXPECT_FALSE(n.in_register);
  EXPECT_EQ(n.stack_offset, 40);
  EXPECT_EQ(elf::go_arg_location(EM_X86_64, false, GOTLS_KEYLOG_SECRET).stack_offset, 56);
}

TEST(GoTlsKeys, KeylogLine) {
  gotls_keys_event k{};
  std::memcpy(k.label, "CLIENT_TRAFFIC_SECRET_0", 23);
  k.label_len = 23;
  k.random_len = 32;
  k.secret_len = 48;
  for (int i = 0; i < 32; ++i) k.client_random[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 48; ++i) k.secret[i] = static_cast<uint8_t>(0xa0 + i % 16);
  auto line = keylog_line(k);
  ASSERT_TRUE(line) << line.error().to_string();
  EXPECT_EQ(line->to_string(), "CLIENT_TRAFFIC_SECRET_0 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f " +
                       std::string("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf") + "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf" +
                       "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  k.secret_len = 65;
  EXPECT_FALSE(keylog_line(k));
  k.secret_len = 48;
  k.label[0] = '\x01';
  EXPECT_FALSE(keylog_line(k));
}

TEST(GoTlsConfig, ModesAndJson) {
  EXPECT_EQ(*tls::parse_capture_mode("pcapng"), CaptureMode::kPcap);
  // One parser for every TLS module: a superset of eCapture's gotls (which refuses these two).
  EXPECT_EQ(*tls::parse_capture_mode("key"), CaptureMode::kKeylog);
  EXPECT_EQ(*tls::parse_capture_mode("TEXT"), CaptureMode::kText);
  EXPECT_FALSE(tls::parse_capture_mode("keys"));
  // Without -e or --pid: every running Go program that uses crypto/tls.
  GoTlsConfig c;
  EXPECT_TRUE(c.validate());
  GlobalConfig g;
  auto ok = json_config("gotls", nlohmann::json{{"elf_path", "/bin/true"}, {"capture_mode", "keylog"},
                                            {"keylog_file", "/tmp/k.log"}}, g);
  ASSERT_TRUE(ok) << ok.error().to_string();
  auto* gc = dynamic_cast<GoTlsConfig*>(ok->get());
  ASSERT_NE(gc, nullptr);
  EXPECT_EQ(gc->elfpath, "/bin/true");
  EXPECT_EQ(gc->model, "keylog");
  EXPECT_EQ(gc->to_json()["keylog_file"], "/tmp/k.log");
  EXPECT_FALSE(json_config("gotls", nlohmann::json{{"elf_path", "/no/such"}}, g));
  EXPECT_FALSE(json_config("gotls", nlohmann::json{{"elf_path", "/bin/true"}, {"capture_mode", "x"}}, g));
  EXPECT_TRUE(json_config("gotls", nlohmann::json{{"capture_mode", "text"}}, g));
}

}  // namespace
}  // namespace ecapture::gotls

namespace ecapture::gotls {
namespace {

// A function's size comes from the file (.symtab st_size, pclntab): a huge one must not make
// offset + size wrap around and send the disassembler past the end of the file (issue 17).
TEST_F(GoPrograms, HostileFunctionSizeIsRefused) {
  auto bin = elf::GoBinary::open(path("default"));
  ASSERT_TRUE(bin) << bin.error().to_string();
  auto f = (*bin)->find_function(kConnRead);
  ASSERT_TRUE(f.has_value());
  for (uint64_t size : {~uint64_t{0}, ~uint64_t{0} - f->file_offset + 2, uint64_t{1} << 40}) {
    elf::GoFunction bad = *f;
    bad.size = size;
    auto rets = (*bin)->ret_offsets(bad);
    ASSERT_FALSE(rets);
    EXPECT_EQ(rets.error().message, path("default") + ": the code of " + std::string(kConnRead) +
                                        " is not in the file");
    EXPECT_EQ((*bin)->body_offset(bad), f->file_offset);
  }
}

}  // namespace
}  // namespace ecapture::gotls
