// Unit tests for src/elf (symbols, versions, SSL sniffing, loader paths), checked against binutils.
#include <dlfcn.h>
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "elf/elf_file.h"
#include "elf/lib_discovery.h"
#include "elf/version_sniff.h"

namespace ecapture::elf {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

#if defined(__x86_64__)
constexpr char kMultiarch[] = "x86_64-linux-gnu";
constexpr char kLdconfigArch[] = "libc6,x86-64";
constexpr int32_t kNativeCacheFlags = 0x0303;
#elif defined(__aarch64__)
constexpr char kMultiarch[] = "aarch64-linux-gnu";
constexpr char kLdconfigArch[] = "libc6,AArch64";
constexpr int32_t kNativeCacheFlags = 0x0a03;
#endif

const std::string kFixtureSources = std::string(ECAPTURE_TEST_FIXTURES) + "/elf";
const std::string kSystemLibDir = std::string("/usr/lib/") + kMultiarch;
const std::string kSystemLibssl = kSystemLibDir + "/libssl.so.3";
const std::string kSystemLibcrypto = kSystemLibDir + "/libcrypto.so.3";
const std::string kAndroidLibssl = kSystemLibDir + "/android/libssl.so.0";
constexpr char kNode[] = "/usr/bin/node";

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Output of a shell command (stderr discarded); the exit status goes to `status` when given.
std::string run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[1 << 16];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int rc = pclose(pipe);
  if (status != nullptr) *status = rc;
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- binutils as the independent oracle -----------------------------------------------------

struct Segment {
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t filesz = 0;
};

// PT_LOAD rows of `readelf -lW`: "LOAD 0x001000 0x...1000 0x...1000 0x00011d 0x00011d R E 0x1000".
std::vector<Segment> readelf_load_segments(const std::string& path) {
  std::vector<Segment> segments;
  for (const std::string& line : lines(run("readelf -lW " + quote(path)))) {
    std::istringstream row(line);
    std::string type, offset, vaddr, paddr, filesz;
    if (!(row >> type >> offset >> vaddr >> paddr >> filesz) || type != "LOAD") continue;
    segments.push_back({std::stoull(offset, nullptr, 16), std::stoull(vaddr, nullptr, 16),
                        std::stoull(filesz, nullptr, 16)});
  }
  return segments;
}

// st_value of the first defined symbol displayed as `name` ("foo@@V2", "exe_helper") by
// `readelf <table_flag> -W`.
std::optional<uint64_t> readelf_symbol_value(const std::string& path, const std::string& table_flag,
                                             const std::string& name) {
  for (const std::string& line : lines(run("readelf -W " + table_flag + " " + quote(path)))) {
    std::istringstream row(line);
    std::string num, value, size, type, bind, vis, ndx, symbol;
    if (!(row >> num >> value >> size >> type >> bind >> vis >> ndx >> symbol)) continue;
    if (num.empty() || num.back() != ':' || ndx == "UND" || symbol != name) continue;
    return std::stoull(value, nullptr, 16);
  }
  return std::nullopt;
}

// DT_NEEDED names from `readelf -d`: "0x...1 (NEEDED)  Shared library: [libc.so.6]".
std::vector<std::string> readelf_needed(const std::string& path) {
  std::vector<std::string> needed;
  for (const std::string& line : lines(run("readelf -dW " + quote(path)))) {
    const size_t open = line.find("(NEEDED)");
    const size_t left = line.find('[');
    const size_t right = line.rfind(']');
    if (open == std::string::npos || left == std::string::npos || right <= left) continue;
    needed.push_back(line.substr(left + 1, right - left - 1));
  }
  return needed;
}

std::optional<uint64_t> offset_in_segments(const std::vector<Segment>& segments, uint64_t vaddr) {
  for (const Segment& s : segments) {
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  }
  return std::nullopt;
}

// File offset of `readelf`'s symbol `name` translated through `readelf -l`.
std::optional<uint64_t> readelf_file_offset(const std::string& path, const std::string& table_flag,
                                            const std::string& name) {
  const std::optional<uint64_t> value = readelf_symbol_value(path, table_flag, name);
  if (!value) return std::nullopt;
  return offset_in_segments(readelf_load_segments(path), *value);
}

// objdump's own "(File Offset: 0x...)" for the code at `vaddr` (works on stripped files too).
std::optional<uint64_t> objdump_file_offset(const std::string& path,
                                            std::optional<uint64_t> vaddr) {
  if (!vaddr) return std::nullopt;
  std::ostringstream command;
  command << std::hex << "objdump -dF --start-address=0x" << *vaddr << " --stop-address=0x"
          << *vaddr + 1 << " " << quote(path);
  const std::string marker = "(File Offset: 0x";
  const std::string out = run(command.str());
  const size_t at = out.find(marker);
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(out.substr(at + marker.size()), nullptr, 16);
}

// First `OpenSSL x.y.z...` in the file according to grep (which reads it as \n-separated lines).
std::string grep_first(const std::string& path, const std::string& regex) {
  const std::vector<std::string> found =
      lines(run("LC_ALL=C grep -a -o -m1 -E " + quote(regex) + " " + quote(path)));
  return found.empty() ? std::string() : found.front();
}

std::string grep_openssl_version(const std::string& path) {
  return grep_first(path, "OpenSSL [0-9]\\.[0-9]+\\.[0-9]+[a-z]*");
}

// ---- fixtures compiled at test time ---------------------------------------------------------

// Builds the fixture binaries once per test process into a temporary directory that is removed
// at exit. Not copyable or movable: the destructor owns the directory.
class Fixtures {
 public:
  Fixtures() {
    std::string base = ECAPTURE_TEST_BUILD_DIR;
    if (::access(base.c_str(), W_OK) != 0) base = "/tmp";
    std::string pattern = base + "/elf_test_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      error = "mkdtemp failed in " + base;
      return;
    }
    dir = pattern;
    const std::string src = kFixtureSources;
    const std::string pid = std::to_string(::getpid());
    lib = dir + "/libvertest.so";
    stripped_lib = dir + "/libvertest_stripped.so";
    truncated_lib = dir + "/libvertest_truncated.so";
    pie = dir + "/exe_pie";
    no_pie = dir + "/exe_nopie";
    sibling_libssl = dir + "/sibling/libfakessl.so";
    sibling_libcrypto = dir + "/sibling/libcrypto.so.3";
    lonely_libssl = dir + "/lonely/libfakessl.so";
    maps_lib = dir + "/libecapmaps" + pid + ".so";
    sleeper = dir + "/ecapsleep" + pid;
    const std::string d = quote(dir);
    const std::vector<std::string> steps = {
        "set -e",
        "cd " + d,
        "mkdir sibling lonely",
        "gcc -shared -fPIC -O1 -Wl,--version-script=" + quote(src + "/vertest.map") +
            " -o libvertest.so " + quote(src + "/vertest.c"),
        "cp libvertest.so libvertest_stripped.so",
        "strip libvertest_stripped.so",
        "head -c 3000 libvertest.so > libvertest_truncated.so",
        "gcc -O1 -fPIE -pie -o exe_pie " + quote(src + "/exe_main.c"),
        "gcc -O1 -fno-pie -no-pie -o exe_nopie " + quote(src + "/exe_main.c"),
        // A libcrypto.so.3 stand-in next to a libssl stand-in that needs it, and a lone copy of
        // that libssl whose libcrypto.so.3 must come from the system.
        "gcc -shared -fPIC -O1 -Wl,-soname,libcrypto.so.3 -o sibling/libcrypto.so.3 " +
            quote(src + "/fake_libcrypto.c"),
        "gcc -shared -fPIC -O1 -o sibling/libfakessl.so " + quote(src + "/fake_libssl.c") +
            " -Wl,--no-as-needed -Lsibling -l:libcrypto.so.3",
        "cp sibling/libfakessl.so lonely/libfakessl.so",
        "cp libvertest.so " + quote(maps_lib),
        "cp exe_pie " + quote(sleeper),
    };
    std::string script;
    for (const std::string& step : steps) script += step + "\n";
    const int rc = std::system(("(" + script + ") >" + d + "/build.log 2>&1").c_str());
    if (rc != 0) error = "building fixtures failed:\n" + read_file(dir + "/build.log");
  }
  ~Fixtures() {
    std::error_code ignored;
    if (!dir.empty()) fs::remove_all(dir, ignored);
  }
  Fixtures(const Fixtures&) = delete;
  Fixtures& operator=(const Fixtures&) = delete;

  std::string error;
  std::string dir;
  std::string lib, stripped_lib, truncated_lib, pie, no_pie;
  std::string sibling_libssl, sibling_libcrypto, lonely_libssl;
  std::string maps_lib, sleeper;
};

const Fixtures& fixtures() {
  static const Fixtures instance;
  return instance;
}

#define ASSERT_FIXTURES() ASSERT_EQ(fixtures().error, "") << "fixture build in " << fixtures().dir

std::unique_ptr<ElfFile> open_or_die(const std::string& path) {
  auto opened = ElfFile::open(path);
  EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().to_string());
  return opened.ok() ? std::move(opened).value() : nullptr;
}

size_t open_fd_count() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++count;
  return count;
}

// ---- ElfFile -----------------------------------------------------------------------------

TEST(ElfFileTest, VersionedLibraryOffsetsMatchReadelfAndObjdump) {
  ASSERT_FIXTURES();
  auto elf = open_or_die(fixtures().lib);
  ASSERT_NE(elf, nullptr);
  EXPECT_EQ(elf->machine(), native_machine());
  EXPECT_TRUE(elf->is_native_arch());
  EXPECT_TRUE(elf->is_shared_object());

  struct Case {
    std::string query;         // what a probe spec would ask for
    std::string display_name;  // how readelf/objdump print the symbol it must resolve to
    std::string version;
    bool default_version;
  };
  const std::vector<Case> cases = {
      {"foo", "foo@@V2", "V2", true},
      {"foo@@V2", "foo@@V2", "V2", true},
      {"foo@V2", "foo@@V2", "V2", true},
      {"foo@V1", "foo@V1", "V1", false},
      {"plain_export", "plain_export@@V1", "V1", true},
      {"ifn", "ifn@@V1", "V1", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.query);
    const std::optional<Symbol> sym = elf->find_function(c.query);
    ASSERT_TRUE(sym.has_value());
    EXPECT_EQ(sym->name, c.query.substr(0, c.query.find('@')));
    EXPECT_EQ(sym->version, c.version);
    EXPECT_EQ(sym->default_version, c.default_version);
    EXPECT_TRUE(sym->is_function);
    EXPECT_TRUE(sym->from_dynsym);
    EXPECT_TRUE(sym->defined);
    EXPECT_EQ(sym->value, readelf_symbol_value(fixtures().lib, "--dyn-syms", c.display_name));
    EXPECT_EQ(sym->file_offset, readelf_file_offset(fixtures().lib, "--dyn-syms", c.display_name));
    EXPECT_EQ(sym->file_offset, objdump_file_offset(fixtures().lib, sym->value));
  }
  // foo@V1 and foo@@V2 are different code.
  EXPECT_NE(elf->find_function("foo@V1")->value, elf->find_function("foo")->value);
  // "@@" insists on the default version; V1 of foo is hidden.
  EXPECT_FALSE(elf->find_function("foo@@V1").has_value());
  EXPECT_FALSE(elf->find_function("foo@V3").has_value());
  EXPECT_FALSE(elf->find_function("foo@").has_value());
  EXPECT_FALSE(elf->find_function("does_not_exist").has_value());
  // Data is not a function, whatever its name.
  EXPECT_FALSE(elf->find_function("plain_data").has_value());
}

TEST(ElfFileTest, DataSymbolInWritableSegmentHasShiftedOffset) {
  ASSERT_FIXTURES();
  auto elf = open_or_die(fixtures().lib);
  ASSERT_NE(elf, nullptr);
  const Symbol* data = nullptr;
  for (const Symbol& s : elf->symbols()) {
    if (s.name == "plain_data" && s.from_dynsym) data = &s;
  }
  ASSERT_NE(data, nullptr);
  EXPECT_FALSE(data->is_function);
  EXPECT_EQ(data->version, "V1");
  const std::optional<uint64_t> expected =
      readelf_file_offset(fixtures().lib, "--dyn-syms", "plain_data@@V1");
  ASSERT_TRUE(expected.has_value());
  // The RW segment's p_vaddr and p_offset differ, so this really exercises the translation.
  EXPECT_NE(*expected, data->value);
  EXPECT_EQ(data->file_offset, *expected);
  EXPECT_EQ(elf->vaddr_to_offset(data->value), expected);
}

TEST(ElfFileTest, SymtabOnlySymbolsAndStrippedCopy) {
  ASSERT_FIXTURES();
  auto full = open_or_die(fixtures().lib);
  ASSERT_NE(full, nullptr);
  // foo_v1 is local: only .symtab knows it.
  const std::optional<Symbol> local = full->find_function("foo_v1");
  ASSERT_TRUE(local.has_value());
  EXPECT_FALSE(local->from_dynsym);
  EXPECT_EQ(local->file_offset, objdump_file_offset(fixtures().lib, local->value));
  EXPECT_EQ(local->value, readelf_symbol_value(fixtures().lib, "--syms", "foo_v1"));
  EXPECT_EQ(local->value, full->find_function("foo@V1")->value);

  auto stripped = open_or_die(fixtures().stripped_lib);
  ASSERT_NE(stripped, nullptr);
  EXPECT_FALSE(stripped->find_function("foo_v1").has_value());
  for (const std::string name : {"foo", "foo@V1", "plain_export", "ifn"}) {
    SCOPED_TRACE(name);
    const std::optional<Symbol> before = full->find_function(name);
    const std::optional<Symbol> after = stripped->find_function(name);
    ASSERT_TRUE(before.has_value());
    ASSERT_TRUE(after.has_value());
    EXPECT_TRUE(after->from_dynsym);
    EXPECT_EQ(after->version, before->version);
    EXPECT_EQ(after->file_offset, before->file_offset);
  }
  for (const Symbol& s : stripped->symbols()) EXPECT_TRUE(s.from_dynsym) << s.name;
}

TEST(ElfFileTest, PieAndNonPieExecutables) {
  ASSERT_FIXTURES();
  for (const std::string& path : {fixtures().pie, fixtures().no_pie}) {
    SCOPED_TRACE(path);
    auto elf = open_or_die(path);
    ASSERT_NE(elf, nullptr);
    EXPECT_EQ(elf->is_shared_object(), path == fixtures().pie);
    const std::optional<Symbol> helper = elf->find_function("exe_helper");
    ASSERT_TRUE(helper.has_value());
    EXPECT_FALSE(helper->from_dynsym);
    EXPECT_TRUE(helper->default_version);
    EXPECT_EQ(helper->file_offset, readelf_file_offset(path, "--syms", "exe_helper"));
    EXPECT_EQ(helper->file_offset, objdump_file_offset(path, helper->value));
    EXPECT_THAT(elf->needed(), Contains("libc.so.6"));
    EXPECT_EQ(elf->needed(), readelf_needed(path));

    // The import of printf/puts is versioned through .gnu.version_r and is not a definition.
    bool saw_import = false;
    for (const Symbol& s : elf->symbols()) {
      if (s.from_dynsym && !s.defined && s.version.starts_with("GLIBC_")) saw_import = true;
    }
    EXPECT_TRUE(saw_import);
    EXPECT_FALSE(elf->find_function("printf").has_value());
    EXPECT_FALSE(elf->find_function("puts").has_value());
  }
  // In the non-PIE binary addresses start at 0x400000 while offsets start at 0.
  auto no_pie = open_or_die(fixtures().no_pie);
  ASSERT_NE(no_pie, nullptr);
  const Symbol helper = *no_pie->find_function("exe_helper");
  EXPECT_GE(helper.value, 0x400000u);
  EXPECT_LT(helper.file_offset, 0x400000u);
}

TEST(ElfFileTest, NeededAndSectionData) {
  ASSERT_FIXTURES();
  auto elf = open_or_die(fixtures().lib);
  ASSERT_NE(elf, nullptr);
  EXPECT_EQ(elf->needed(), readelf_needed(fixtures().lib));
  const std::vector<uint8_t> rodata = elf->section_data(".rodata");
  const std::string text(rodata.begin(), rodata.end());
  EXPECT_THAT(text, HasSubstr("ecapture-vertest-rodata-marker"));
  // Size matches the section header readelf prints.
  const std::string sections = run("readelf -SW " + quote(fixtures().lib));
  bool size_checked = false;
  for (const std::string& line : lines(sections)) {
    const size_t at = line.find(" .rodata ");
    if (at == std::string::npos) continue;
    std::istringstream row(line.substr(at));
    std::string name, type, address, offset, size;
    ASSERT_TRUE(row >> name >> type >> address >> offset >> size);
    EXPECT_EQ(rodata.size(), std::stoull(size, nullptr, 16));
    size_checked = true;
  }
  EXPECT_TRUE(size_checked);
  EXPECT_TRUE(elf->section_data(".no_such_section").empty());
  EXPECT_TRUE(elf->section_data(".bss").empty());  // NOBITS: nothing in the file

  auto fake = open_or_die(fixtures().sibling_libssl);
  ASSERT_NE(fake, nullptr);
  EXPECT_THAT(fake->needed(), Contains("libcrypto.so.3"));
}

TEST(ElfFileTest, SystemLibssl) {
  ASSERT_TRUE(exists(kSystemLibssl)) << kSystemLibssl << " is part of Debian's libssl3";
  auto elf = open_or_die(kSystemLibssl);
  ASSERT_NE(elf, nullptr);
  EXPECT_THAT(elf->needed(), Contains("libcrypto.so.3"));
  EXPECT_EQ(elf->needed(), readelf_needed(kSystemLibssl));
  for (const std::string name : {"SSL_write", "SSL_write_ex", "SSL_read_ex", "SSL_read"}) {
    SCOPED_TRACE(name);
    const std::optional<Symbol> sym = elf->find_function(name);
    ASSERT_TRUE(sym.has_value());
    EXPECT_TRUE(sym->from_dynsym);
    EXPECT_EQ(sym->version, "OPENSSL_3.0.0");
    EXPECT_TRUE(sym->default_version);
    const std::string display = name + "@@OPENSSL_3.0.0";
    EXPECT_EQ(sym->file_offset, readelf_file_offset(kSystemLibssl, "--dyn-syms", display));
    EXPECT_EQ(sym->file_offset, objdump_file_offset(kSystemLibssl, sym->value));
    const std::optional<Symbol> versioned = elf->find_function(display);
    ASSERT_TRUE(versioned.has_value());
    EXPECT_EQ(versioned->file_offset, sym->file_offset);
  }
}

TEST(ElfFileTest, NonPieNodeBinary) {
  if (!exists(kNode)) GTEST_SKIP() << kNode << " not installed";
  auto elf = open_or_die(kNode);
  ASSERT_NE(elf, nullptr);
  const std::optional<Symbol> sym = elf->find_function("SSL_write");
  ASSERT_TRUE(sym.has_value());
  const std::string display = sym->version.empty() ? "SSL_write" : "SSL_write@@" + sym->version;
  const std::optional<uint64_t> expected =
      readelf_file_offset(kNode, sym->from_dynsym ? "--dyn-syms" : "--syms", display);
  ASSERT_TRUE(expected.has_value()) << display;
  EXPECT_EQ(sym->file_offset, *expected);
}

TEST(ElfFileTest, ErrorsNameThePathAndTheProblem) {
  ASSERT_FIXTURES();
  const std::string dir = fixtures().dir;
  const std::string text = dir + "/notes.txt";
  const std::string empty = dir + "/empty";
  write_file(text, "this is not an ELF file\n");
  write_file(empty, "");
  struct Case {
    std::string path;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {dir + "/missing.so", "no such file"},
      {dir + "/missing_dir/x.so", "no such file"},
      {text, "not an ELF file"},
      {empty, "not an ELF file"},
      {dir, "not a regular file"},
      {fixtures().truncated_lib, "truncated/corrupt ELF"},
  };
  const size_t fds_before = open_fd_count();
  for (int round = 0; round < 3; ++round) {
    for (const Case& c : cases) {
      SCOPED_TRACE(c.path);
      auto opened = ElfFile::open(c.path);
      ASSERT_FALSE(opened.ok());
      const std::string message = opened.error().to_string();
      EXPECT_THAT(message, HasSubstr(c.path));
      EXPECT_THAT(message, HasSubstr(c.problem));
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    auto good = ElfFile::open(fixtures().lib);
    ASSERT_TRUE(good.ok());
    ASSERT_TRUE((*good)->find_function("foo").has_value());
  }
  EXPECT_EQ(open_fd_count(), fds_before);
}

TEST(ElfFileTest, TruncatedCopiesAreRejected) {
  ASSERT_FIXTURES();
  const std::string image = read_file(fixtures().lib);
  const std::string path = fixtures().dir + "/cut.so";
  for (size_t size : {size_t{4}, size_t{16}, size_t{63}, size_t{64}, size_t{200}, size_t{1000},
                      image.size() / 2, image.size() - 1}) {
    SCOPED_TRACE(size);
    write_file(path, image.substr(0, size));
    auto opened = ElfFile::open(path);
    ASSERT_FALSE(opened.ok());
    EXPECT_THAT(opened.error().to_string(), HasSubstr("truncated/corrupt ELF"));
  }
}

// ---- version sniffing ---------------------------------------------------------------------

TEST(VersionSniffTest, GoldenBuffers) {
  using namespace std::string_literals;
  struct Case {
    std::string bytes;
    std::optional<SslFlavor> flavor;  // nullopt: no version string at all
    std::string version;
    std::string raw;
  };
  const std::vector<Case> cases = {
      {"\x01junk\0OpenSSL 3.0.19 27 Jan 2026\0tail"s, SslFlavor::kOpenSsl, "3.0.19",
       "OpenSSL 3.0.19 27 Jan 2026"},
      {"OpenSSL 1.1.1w  11 Sep 2023"s, SslFlavor::kOpenSsl, "1.1.1w",
       "OpenSSL 1.1.1w  11 Sep 2023"},
      {"enable OpenSSL 3.0 legacy provider\0OpenSSL 3.0.13+quic 30 Jan 2024\0"s,
       SslFlavor::kOpenSsl, "3.0.13", "OpenSSL 3.0.13+quic 30 Jan 2024"},
      {"OpenSSL 1.0.2k-fips  26 Jan 2017\n"s, SslFlavor::kOpenSsl, "1.0.2k",
       "OpenSSL 1.0.2k-fips  26 Jan 2017"},
      // Pre-releases keep their tag (and are refused by the layout table by that name).
      {"OpenSSL 3.6.0-beta1 19 Aug 2025\0"s, SslFlavor::kOpenSsl, "3.6.0-beta1",
       "OpenSSL 3.6.0-beta1 19 Aug 2025"},
      {"OpenSSL 3.0.0-alpha17 20 May 2021\0"s, SslFlavor::kOpenSsl, "3.0.0-alpha17",
       "OpenSSL 3.0.0-alpha17 20 May 2021"},
      {"OpenSSL 1.1.0-pre6 4 Aug 2016\0"s, SslFlavor::kOpenSsl, "1.1.0-pre6",
       "OpenSSL 1.1.0-pre6 4 Aug 2016"},
      {"OpenSSL 3.5.0-devil\0"s, SslFlavor::kOpenSsl, "3.5.0", "OpenSSL 3.5.0-devil"},
      {"OpenSSL 1.1.1 (compatible; BoringSSL)\0"s, SslFlavor::kBoringSsl, "",
       "OpenSSL 1.1.1 (compatible; BoringSSL)"},
      {"abc\0BoringSSL\0def"s, SslFlavor::kBoringSsl, "", "BoringSSL"},
      // A real OpenSSL version wins over a stray marker.
      {"BoringSSL\0OpenSSL 3.2.1 30 Jan 2024"s, SslFlavor::kOpenSsl, "3.2.1",
       "OpenSSL 3.2.1 30 Jan 2024"},
      {"OpenSSL 3.0\0OpenSSL x.1.2\0OpenSSL 3..1\0OpenSSL 3.1.\0OpenSSL"s, std::nullopt, "", ""},
      {""s, std::nullopt, "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.bytes);
    const std::optional<SslVersion> found = sniff_ssl_version_in_bytes(c.bytes);
    ASSERT_EQ(found.has_value(), c.flavor.has_value());
    if (!found) continue;
    EXPECT_EQ(found->flavor, *c.flavor);
    EXPECT_EQ(found->version, c.version);
    EXPECT_EQ(found->raw, c.raw);
    EXPECT_TRUE(found->source_path.empty());
  }
}

TEST(VersionSniffTest, Display) {
  SslVersion v;
  v.version = "3.0.19";
  EXPECT_EQ(v.display(), "OpenSSL 3.0.19");
  v.flavor = SslFlavor::kBoringSsl;
  v.version.clear();
  EXPECT_EQ(v.display(), "BoringSSL");
}

// The file scanner reads in chunks; moving the string across every chunk boundary must not
// change the answer.
TEST(VersionSniffTest, ChunkBoundariesAnywhereInTheString) {
  ASSERT_FIXTURES();
  const std::string needle = std::string("OpenSSL 3.0.19 27 Jan 2026\0", 27);
  const std::string decoy = std::string("OpenSSL 3.0 legacy\0", 19);
  const std::string path = fixtures().dir + "/chunks.bin";
  for (size_t lead = 0; lead < 300; lead += 1) {
    std::string bytes(lead, '\x01');
    bytes += decoy + needle + std::string(40, '\x02') + "BoringSSL";
    write_file(path, bytes);
    for (size_t chunk : {size_t{1}, size_t{5}, size_t{64}, size_t{257}, size_t{1} << 20}) {
      auto found = sniff_ssl_version_in(path, chunk);
      ASSERT_TRUE(found.ok());
      ASSERT_TRUE(found->has_value()) << "lead " << lead << " chunk " << chunk;
      EXPECT_EQ((*found)->version, "3.0.19") << "lead " << lead << " chunk " << chunk;
      EXPECT_EQ((*found)->raw, "OpenSSL 3.0.19 27 Jan 2026");
      EXPECT_EQ((*found)->source_path, path);
    }
  }
  // Only the marker, straddling boundaries: still BoringSSL.
  for (size_t lead = 0; lead < 40; ++lead) {
    write_file(path, std::string(lead, 'x') + "BoringSSL" + std::string(3, 'y'));
    for (size_t chunk : {size_t{1}, size_t{4}, size_t{9}}) {
      auto found = sniff_ssl_version_in(path, chunk);
      ASSERT_TRUE(found.ok());
      ASSERT_TRUE(found->has_value());
      EXPECT_EQ((*found)->flavor, SslFlavor::kBoringSsl);
    }
  }
}

TEST(VersionSniffTest, SystemLibsslFindsVersionInLibcrypto) {
  ASSERT_TRUE(exists(kSystemLibcrypto));
  const std::string expected = grep_openssl_version(kSystemLibcrypto);
  ASSERT_THAT(expected, HasSubstr("OpenSSL 3."));

  auto own = sniff_ssl_version_in(kSystemLibssl);
  ASSERT_TRUE(own.ok());
  EXPECT_FALSE(own->has_value()) << "OpenSSL 3's libssl carries no version string";

  auto crypto = sniff_ssl_version_in(kSystemLibcrypto);
  ASSERT_TRUE(crypto.ok());
  ASSERT_TRUE(crypto->has_value());
  EXPECT_EQ("OpenSSL " + (*crypto)->version, expected);
  EXPECT_EQ((*crypto)->raw,
            grep_first(kSystemLibcrypto, "OpenSSL [0-9]\\.[0-9]+\\.[0-9]+[a-z]*[[:print:]]*"));

  auto detected = detect_ssl_version(kSystemLibssl);
  ASSERT_TRUE(detected.ok()) << detected.error().to_string();
  EXPECT_EQ(detected->flavor, SslFlavor::kOpenSsl);
  EXPECT_EQ(detected->display(), expected);
  EXPECT_EQ(detected->source_path, kSystemLibcrypto);

  // The openssl CLI, when present, reports the same library version.
  int status = 0;
  const std::string cli = run("openssl version", &status);
  if (status == 0 && cli.find("(Library: ") == std::string::npos) {
    EXPECT_THAT(cli, HasSubstr(expected + " "));
  } else if (status == 0) {
    EXPECT_THAT(cli, HasSubstr("(Library: " + expected + " "));
  }
}

TEST(VersionSniffTest, NodeStaticOpenssl) {
  if (!exists(kNode)) GTEST_SKIP() << kNode << " not installed";
  const std::string expected = grep_openssl_version(kNode);
  if (expected.empty()) GTEST_SKIP() << kNode << " has no static OpenSSL";
  auto detected = detect_ssl_version(kNode);
  ASSERT_TRUE(detected.ok()) << detected.error().to_string();
  EXPECT_EQ(detected->flavor, SslFlavor::kOpenSsl);
  EXPECT_EQ(detected->display(), expected);
  EXPECT_EQ(detected->source_path, kNode);
  EXPECT_EQ(detected->raw, grep_first(kNode, "OpenSSL [0-9]\\.[0-9]+\\.[0-9]+[a-z]*[[:print:]]*"));
}

TEST(VersionSniffTest, AndroidBoringssl) {
  if (!exists(kAndroidLibssl)) {
    GTEST_SKIP() << kAndroidLibssl << " missing (apt-get install android-libboringssl)";
  }
  auto detected = detect_ssl_version(kAndroidLibssl);
  ASSERT_TRUE(detected.ok()) << detected.error().to_string();
  EXPECT_EQ(detected->flavor, SslFlavor::kBoringSsl);
  EXPECT_EQ(detected->version, "");
  EXPECT_EQ(detected->display(), "BoringSSL");
  // The marker lives in the libcrypto next to it (found through DT_NEEDED).
  EXPECT_EQ(detected->source_path, kSystemLibDir + "/android/libcrypto.so.0");
}

TEST(VersionSniffTest, LibcryptoNextToLibsslIsPreferred) {
  ASSERT_FIXTURES();
  auto detected = detect_ssl_version(fixtures().sibling_libssl);
  ASSERT_TRUE(detected.ok()) << detected.error().to_string();
  EXPECT_EQ(detected->version, "9.8.7zz");
  EXPECT_EQ(detected->raw, "OpenSSL 9.8.7zz 1 Jan 2099");
  EXPECT_EQ(detected->source_path, fixtures().sibling_libcrypto);
}

TEST(VersionSniffTest, LibcryptoFallsBackToTheLoaderPath) {
  ASSERT_FIXTURES();
  const std::vector<std::string> cached = ld_cache_lookup("libcrypto.so.3");
  ASSERT_FALSE(cached.empty());
  auto detected = detect_ssl_version(fixtures().lonely_libssl);
  ASSERT_TRUE(detected.ok()) << detected.error().to_string();
  EXPECT_EQ(detected->source_path, cached.front());
  EXPECT_EQ(detected->display(), grep_openssl_version(cached.front()));
}

TEST(VersionSniffTest, ErrorsNameTheFilesSearched) {
  ASSERT_FIXTURES();
  auto missing = detect_ssl_version(fixtures().dir + "/nope.so");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().to_string(), HasSubstr(fixtures().dir + "/nope.so: no such file"));

  auto plain = detect_ssl_version(fixtures().lib);
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(plain.error().to_string(), HasSubstr(fixtures().lib));
  EXPECT_THAT(plain.error().to_string(), HasSubstr("--ssl_version"));

  const std::string text = fixtures().dir + "/version_text.txt";
  write_file(text, "no version here\n");
  auto not_elf = detect_ssl_version(text);
  ASSERT_FALSE(not_elf.ok());
  EXPECT_THAT(not_elf.error().to_string(), HasSubstr(text));
  EXPECT_THAT(not_elf.error().to_string(), HasSubstr("not an ELF file"));

  auto dir = sniff_ssl_version_in(fixtures().dir);
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.error().to_string(), HasSubstr("not a regular file"));
}

// ---- library discovery --------------------------------------------------------------------

TEST(LibDiscoveryTest, LdSoConfIncludesGlobsAndComments) {
  ASSERT_FIXTURES();
  const std::string root = fixtures().dir + "/conf";
  for (const char* sub : {"/conf.d", "/nested", "/dirA", "/dirB", "/dirC", "/dirD", "/dirX"}) {
    fs::create_directories(root + sub);
  }
  const std::vector<std::string> top_level = {
      "# top-level comment",
      "  " + root + "/dirA   # trailing comment",
      "include conf.d/*.conf",
      "hwcap 1 nosegneg",
      "include\t" + root + "/abs.conf",
      root + "/missing",
      root + "/dirA/",
      "relative/dir",
      "",
  };
  std::string conf;
  for (const std::string& line : top_level) conf += line + "\n";
  write_file(root + "/ld.so.conf", conf);
  write_file(root + "/conf.d/10-b.conf", root + "/dirB\n");
  write_file(root + "/conf.d/20-c.conf", "include ../nested/*.conf\n");
  write_file(root + "/conf.d/ignored.txt", root + "/dirX\n");
  write_file(root + "/nested/x.conf", root + "/dirC=libc6\n");
  // Includes itself: must terminate.
  write_file(root + "/abs.conf", root + "/dirD\ninclude abs.conf\n");

  const std::vector<std::string> dirs = loader_search_dirs(root + "/ld.so.conf");
  ASSERT_GE(dirs.size(), 5u);
  const std::vector<std::string> from_conf(dirs.begin(), dirs.begin() + 4);
  EXPECT_EQ(from_conf, (std::vector<std::string>{root + "/dirA", root + "/dirB", root + "/dirC",
                                                 root + "/dirD"}));
  EXPECT_THAT(dirs, Not(Contains(root + "/dirX")));
  EXPECT_THAT(dirs, Not(Contains(root + "/missing")));
  // Then the defaults, existing ones only, no directory twice (merged /usr folds /lib/x).
  EXPECT_EQ(dirs[4], std::string("/lib/") + kMultiarch);
  std::set<std::pair<dev_t, ino_t>> identities;
  for (const std::string& dir : dirs) {
    struct stat st;
    ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_TRUE(identities.emplace(st.st_dev, st.st_ino).second) << dir << " listed twice";
  }
  EXPECT_THAT(loader_search_dirs(root + "/no-such.conf"),
              Contains(std::string("/lib/") + kMultiarch));
}

// Every native entry `ldconfig -p` prints must come back from our own cache parser.
TEST(LibDiscoveryTest, LdCacheAgreesWithLdconfig) {
  const std::string listing = run("PATH=$PATH:/sbin:/usr/sbin ldconfig -p");
  std::map<std::string, std::set<std::string>> expected;
  for (const std::string& line : lines(listing)) {
    // "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3"
    const size_t open = line.find(" (");
    const size_t arrow = line.find(") => ");
    if (open == std::string::npos || arrow == std::string::npos) continue;
    const std::string tags = line.substr(open + 2, arrow - open - 2);
    if (tags != kLdconfigArch && !tags.starts_with(std::string(kLdconfigArch) + ",")) continue;
    std::string soname = line.substr(0, open);
    soname.erase(0, soname.find_first_not_of(" \t"));
    expected[soname].insert(line.substr(arrow + 5));
  }
  ASSERT_TRUE(expected.count("libssl.so.3")) << "ldconfig -p does not list libssl.so.3";
  for (const auto& [soname, paths] : expected) {
    const std::vector<std::string> found = ld_cache_lookup(soname);
    EXPECT_EQ(std::set<std::string>(found.begin(), found.end()), paths) << soname;
  }
  EXPECT_TRUE(ld_cache_lookup("libdefinitely-not-a-library.so.42").empty());

  auto libssl = find_library({"libssl.so.99", "libssl.so.3"});
  ASSERT_TRUE(libssl.ok()) << libssl.error().to_string();
  EXPECT_EQ(*libssl, *expected["libssl.so.3"].begin());
}

// Synthetic caches in both on-disk formats, built here byte by byte.
class CacheWriter {
 public:
  void add(int32_t flags, const std::string& key, const std::string& value, uint64_t hwcap = 0) {
    entries_.push_back({flags, key, value, hwcap});
  }

  // New format only; with `with_old_prefix`, the file starts with an old-format table whose
  // entries point at decoy strings, the way glibc before 2.32 wrote it ("compat" format).
  std::string build(bool with_old_prefix) const {
    std::string prefix;
    if (with_old_prefix) {
      prefix = "ld.so-1.7.0";
      prefix.push_back('\0');
      put<uint32_t>(prefix, static_cast<uint32_t>(entries_.size()));
      for (size_t i = 0; i < entries_.size(); ++i) {
        put<int32_t>(prefix, entries_[i].flags);
        put<uint32_t>(prefix, 0);  // decoy: the old-table strings are never used
        put<uint32_t>(prefix, 0);
      }
      while (prefix.size() % 8 != 0) prefix.push_back('\0');
    }
    std::string header = "glibc-ld.so.cache1.1";
    const size_t table_end = 48 + 24 * entries_.size();
    std::string strings;
    std::string table;
    for (const Entry& e : entries_) {
      put<int32_t>(table, e.flags);
      put<uint32_t>(table, static_cast<uint32_t>(table_end + strings.size()));
      strings += e.key + '\0';
      put<uint32_t>(table, static_cast<uint32_t>(table_end + strings.size()));
      strings += e.value + '\0';
      put<uint32_t>(table, 0);
      put<uint64_t>(table, e.hwcap);
    }
    put<uint32_t>(header, static_cast<uint32_t>(entries_.size()));
    put<uint32_t>(header, static_cast<uint32_t>(strings.size()));
    header.push_back(std::endian::native == std::endian::little ? 2 : 3);
    header.append(19, '\0');
    return prefix + header + table + strings;
  }

  // Old format only: strings are relative to the end of the entry table.
  std::string build_old_only() const {
    std::string out = "ld.so-1.7.0";
    out.push_back('\0');
    put<uint32_t>(out, static_cast<uint32_t>(entries_.size()));
    std::string strings;
    for (const Entry& e : entries_) {
      put<int32_t>(out, e.flags);
      put<uint32_t>(out, static_cast<uint32_t>(strings.size()));
      strings += e.key + '\0';
      put<uint32_t>(out, static_cast<uint32_t>(strings.size()));
      strings += e.value + '\0';
    }
    return out + strings;
  }

 private:
  struct Entry {
    int32_t flags;
    std::string key;
    std::string value;
    uint64_t hwcap;
  };
  template <typename T>
  static void put(std::string& out, T value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  }
  std::vector<Entry> entries_;
};

TEST(LibDiscoveryTest, SyntheticCacheFormats) {
  ASSERT_FIXTURES();
  CacheWriter writer;
  writer.add(kNativeCacheFlags, "libfoo.so.1", "/opt/a/libfoo.so.1");
  writer.add(0x0003, "libfoo.so.1", "/opt/i386/libfoo.so.1");  // libc6 without an arch: 32-bit
  writer.add(kNativeCacheFlags == 0x0303 ? 0x0a03 : 0x0303, "libfoo.so.1",
             "/opt/other/libfoo.so.1");
  writer.add(kNativeCacheFlags, "libfoo.so.1", "/opt/hw/glibc-hwcaps/v3/libfoo.so.1",
             uint64_t{1} << 62);
  writer.add(kNativeCacheFlags, "libfoo.so.1", "/opt/b/libfoo.so.1");
  writer.add(kNativeCacheFlags, "libbar.so.2", "/opt/a/libbar.so.2");
  const std::vector<std::string> expected_foo = {"/opt/a/libfoo.so.1", "/opt/b/libfoo.so.1",
                                                 "/opt/hw/glibc-hwcaps/v3/libfoo.so.1"};
  const std::string path = fixtures().dir + "/ld.so.cache";

  for (bool old_prefix : {false, true}) {
    SCOPED_TRACE(old_prefix ? "old+new" : "new");
    const std::string cache = writer.build(old_prefix);
    write_file(path, cache);
    EXPECT_EQ(ld_cache_lookup("libfoo.so.1", path), expected_foo);
    EXPECT_EQ(ld_cache_lookup("libbar.so.2", path), std::vector<std::string>{"/opt/a/libbar.so.2"});
    EXPECT_TRUE(ld_cache_lookup("libfoo.so", path).empty());
    // Cut anywhere: never a crash, never a path that is not in the file.
    for (size_t size = 0; size < cache.size(); ++size) {
      write_file(path, cache.substr(0, size));
      for (const std::string& found : ld_cache_lookup("libfoo.so.1", path)) {
        EXPECT_THAT(expected_foo, Contains(found)) << "cut at " << size;
      }
    }
  }

  write_file(path, writer.build_old_only());
  EXPECT_EQ(ld_cache_lookup("libfoo.so.1", path),
            (std::vector<std::string>{"/opt/a/libfoo.so.1", "/opt/hw/glibc-hwcaps/v3/libfoo.so.1",
                                      "/opt/b/libfoo.so.1"}));

  write_file(path, "not a cache at all, just some text that is long enough to look like one");
  EXPECT_TRUE(ld_cache_lookup("libfoo.so.1", path).empty());
  EXPECT_TRUE(ld_cache_lookup("libfoo.so.1", fixtures().dir + "/no-cache").empty());
}

TEST(LibDiscoveryTest, FindLibraryErrorListsNamesAndDirectories) {
  auto missing = find_library({"libssl.so.97", "libssl.so.98"});
  ASSERT_FALSE(missing.ok());
  const std::string message = missing.error().to_string();
  EXPECT_THAT(message, HasSubstr("cannot find libssl.so.97 or libssl.so.98 in the ld cache or in "
                                 "/etc/ld.so.conf directories ("));
  EXPECT_THAT(message, HasSubstr(std::string("/lib/") + kMultiarch));
  EXPECT_THAT(message, HasSubstr("pass its path with --libssl"));
  EXPECT_EQ(message.find('\n'), std::string::npos);

  auto other = find_library({"libnothing-here.so.1"});
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(other.error().to_string(), Not(HasSubstr("--libssl")));
  EXPECT_FALSE(find_library({}).ok());
}

TEST(LibDiscoveryTest, MappedLibrariesSeesOurOwnDlopen) {
  ASSERT_FIXTURES();
  const std::string name = fs::path(fixtures().maps_lib).filename().string();
  const std::string prefix = name.substr(0, name.size() - 3);  // "libecapmaps<pid>"
  EXPECT_TRUE(mapped_libraries(prefix).empty());
  void* handle = dlopen(fixtures().maps_lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  const std::string canonical = fs::canonical(fixtures().maps_lib).string();
  EXPECT_EQ(mapped_libraries(prefix), std::vector<std::string>{canonical});
  EXPECT_EQ(mapped_libraries(name), std::vector<std::string>{canonical});
  EXPECT_TRUE(mapped_libraries(name + "x").empty());
  dlclose(handle);
}

// A process in another mount namespace is reported through /proc/<pid>/root.
TEST(LibDiscoveryTest, MappedLibrariesInAnotherMountNamespace) {
  ASSERT_FIXTURES();
  if (run("command -v unshare").empty()) GTEST_SKIP() << "unshare(1) not installed";
  const std::string sleeper = fixtures().sleeper;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // -r maps us to root in a new user namespace, so no privilege is needed for -m.
    execlp("unshare", "unshare", "-r", "-m", sleeper.c_str(), "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::string canonical = fs::canonical(sleeper).string();
  const std::string name = fs::path(sleeper).filename().string();
  std::vector<std::string> found;
  bool exited = false;
  for (int i = 0; i < 100 && found.empty(); ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    found = mapped_libraries(name);
    if (found.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  if (exited) GTEST_SKIP() << "unshare -r -m is not permitted here (user namespaces disabled?)";
  EXPECT_EQ(found, std::vector<std::string>{"/proc/" + std::to_string(pid) + "/root" + canonical});
}

}  // namespace
}  // namespace ecapture::elf
