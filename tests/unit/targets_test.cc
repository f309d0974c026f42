// Host-wide discovery: /proc/<pid>/maps parsing and grouping of mapped files into targets, on
// recorded maps text.
#include "tls/targets.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <map>

#include "elf/elf_file.h"

namespace ecapture::tls {
namespace {

// Recorded from a python3.11 process on Debian 12 (trimmed), plus lines the parser must skip.
constexpr const char* kPythonMaps =
    "55d0c0a1b000-55d0c0a6f000 r--p 00000000 fe:01 1310773                    /usr/bin/python3.11\n"
    "55d0c0a6f000-55d0c0d3e000 r-xp 00054000 fe:01 1310773                    /usr/bin/python3.11\n"
    "55d0c1f8e000-55d0c2090000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f2a4c200000-7f2a4c25e000 r--p 00000000 fe:01 1323101                    "
    "/usr/lib/x86_64-linux-gnu/libssl.so.3\n"
    "7f2a4c25e000-7f2a4c2b8000 r-xp 0005e000 fe:01 1323101                    "
    "/usr/lib/x86_64-linux-gnu/libssl.so.3\n"
    "7f2a4c600000-7f2a4c86b000 r-xp 000a0000 fe:01 1323099                    "
    "/usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
    "7f2a4d000000-7f2a4d001000 r-xp 00000000 fe:01 1400000                    /tmp/gone.so "
    "(deleted)\n"
    "7f2a4d100000-7f2a4d200000 r-xp 00000000 00:05 77                         /memfd:jit "
    "(deleted)\n"
    "7ffc3a5f2000-7ffc3a5f4000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7f2a4d300000-7f2a4d301000 r-xp 00000000 fe:01 1400001                    /opt/with space/lib "
    "x.so\n";

TEST(TargetsTest, ParsesFileBackedMapsLines) {
  auto entries = parse_maps(kPythonMaps);
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].path, "/usr/bin/python3.11");
  EXPECT_FALSE(entries[0].exec);
  EXPECT_TRUE(entries[1].exec);
  EXPECT_EQ(entries[1].start, 0x55d0c0a6f000u);
  EXPECT_EQ(entries[1].end, 0x55d0c0d3e000u);
  EXPECT_EQ(entries[1].id.dev, makedev(0xfe, 0x01));
  EXPECT_EQ(entries[1].id.ino, 1310773u);
  EXPECT_EQ(entries[3].path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  EXPECT_EQ(entries[5].path, "/opt/with space/lib x.so");
}

TEST(TargetsTest, KernelDevEncodingRoundTrips) {
  const uint64_t udev = makedev(259, 3);
  EXPECT_EQ(user_dev_to_kernel(udev), (259ull << 20) | 3);
  EXPECT_EQ(kernel_dev_to_user((259ull << 20) | 3), udev);
}

TEST(TargetsTest, GroupsByIdentityAcrossProcessesAndNamespaces) {
  // pid 10 and 11 share the system libssl; pid 12 (a container) has a copy at another inode under
  // the same path, reachable only through its root; pid 13's file cannot be reached.
  const std::string container =
      "7f0000000000-7f0000001000 r-xp 00000000 fe:01 999                        "
      "/usr/lib/x86_64-linux-gnu/libssl.so.3\n";
  const std::string unreachable =
      "7f0000000000-7f0000001000 r-xp 00000000 fe:01 555                        /usr/lib/x.so\n";
  std::vector<std::pair<int, std::vector<MapsEntry>>> procs = {
      {10, parse_maps(kPythonMaps)},
      {11, parse_maps(kPythonMaps)},
      {12, parse_maps(container)},
      {13, parse_maps(unreachable)},
  };
  int reach_calls = 0;
  Reach reach = [&](int pid, const MapsEntry& e) -> std::optional<Reached> {
    ++reach_calls;
    if (e.id.ino == 555) return std::nullopt;
    if (pid == 12) return Reached{"/proc/12/root" + e.path, e.id};
    return Reached{e.path, e.id};
  };
  auto targets = group_targets(procs, reach);
  std::map<uint64_t, Target> by_ino;
  for (auto& t : targets) by_ino[t.id.ino] = t;
  // Executable mappings only: python3.11, libssl, libcrypto, "lib x.so", and the copy.
  ASSERT_EQ(targets.size(), 5u);
  EXPECT_EQ(by_ino[1323101].pids, (std::set<int>{10, 11}));
  EXPECT_EQ(by_ino[1323101].host_path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  EXPECT_EQ(by_ino[999].pids, (std::set<int>{12}));
  EXPECT_EQ(by_ino[999].path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  EXPECT_EQ(by_ino[999].host_path, "/proc/12/root/usr/lib/x86_64-linux-gnu/libssl.so.3");
  EXPECT_EQ(by_ino.count(555), 0u);
  // A file is reached once, not once per process that maps it (5 targets + the unreachable one).
  EXPECT_EQ(reach_calls, 6);
}

TEST(TargetsTest, ScanFindsOwnProcessLibraries) {
  // The test binary maps libc: the scan of our own pid finds it with our pid.
  auto targets = scan_targets(getpid());
  bool libc = false;
  for (const auto& t : targets) {
    if (t.path.find("/libc.so") != std::string::npos) {
      libc = true;
      EXPECT_EQ(t.pids, (std::set<int>{getpid()}));
      EXPECT_EQ(t.host_path, t.path);
    }
  }
  EXPECT_TRUE(libc);
  EXPECT_TRUE(scan_targets(getpid(), getpid()).empty());
}

}  // namespace
}  // namespace ecapture::tls

namespace ecapture::elf {
namespace {

TEST(ElfMayExportTest, ReadsTheDynamicStringTableOnly) {
  // This test binary imports libcrypto's EVP_KDF_derive (HKDF in openssl_keys.cc) and names
  // no SSL_write anywhere in its dynamic symbols.
  auto elf = ElfFile::open("/proc/self/exe");
  ASSERT_TRUE(elf) << elf.error().to_string();
  EXPECT_TRUE((*elf)->may_export("EVP_KDF_derive"));
  EXPECT_FALSE((*elf)->may_export("EVP_KDF_deriv"));  // whole names only
  EXPECT_FALSE((*elf)->may_export("SSL_write"));
}

}  // namespace
}  // namespace ecapture::elf
