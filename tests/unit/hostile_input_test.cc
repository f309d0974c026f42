// Hostile input (issue 17): decompression bombs, huge and crafted files, and the replay of every
// fuzz regression input in tests/fixtures/fuzz/<target>/ through that fuzz target's own entry
// point (linked in under the name fuzz_entry_<target>).
#include <brotli/encode.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "elf/elf_file.h"
#include "elf/go_binary.h"
#include "elf/version_sniff.h"
#include "events/parsers/decompress.h"
#include "output/keylog_writer.h"

extern "C" int fuzz_entry_elf(const uint8_t* data, size_t size);
extern "C" int fuzz_entry_go_binary(const uint8_t* data, size_t size);
extern "C" int fuzz_entry_version_sniff(const uint8_t* data, size_t size);
extern "C" int fuzz_entry_decompress(const uint8_t* data, size_t size);
extern "C" int fuzz_entry_pcap_filter(const uint8_t* data, size_t size);
extern "C" int fuzz_entry_api_config(const uint8_t* data, size_t size);

namespace ecapture {
namespace {

namespace fs = std::filesystem;

std::string gzip_of(const std::string& in, int window_bits = 15 + 16) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string brotli_of(const std::string& in) {
  std::string out(BrotliEncoderMaxCompressedSize(in.size()), '\0');
  size_t n = out.size();
  EXPECT_TRUE(BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW,
                                    BROTLI_MODE_GENERIC, in.size(),
                                    reinterpret_cast<const uint8_t*>(in.data()), &n,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(n);
  return out;
}

std::string zstd_of(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// 64 MiB of zeros in a few KiB, for every coding: refused at the limit, whatever the ratio.
TEST(DecompressionBomb, EveryCodingStopsAtTheLimit) {
  const std::string zeros(64u << 20, '\0');
  const std::string bombs[][2] = {{"gzip", gzip_of(zeros)},
                                  {"deflate", gzip_of(zeros, 15)},
                                  {"deflate", gzip_of(zeros, -15)},
                                  {"br", brotli_of(zeros)},
                                  {"zstd", zstd_of(zeros)}};
  for (const auto& [coding, bomb] : bombs) {
    SCOPED_TRACE(coding);
    ASSERT_LT(bomb.size(), 1u << 20);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(decode_content(coding, bomb, 1u << 20).has_value());
    // Stopping early: far less time than inflating 64 MiB several times over would take.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  }
}

TEST(DecompressionBomb, ExactlyTheLimitIsAcceptedOneByteMoreIsNot) {
  const std::string body(100000, 'x');
  for (const auto& [coding, data] :
       {std::pair<std::string, std::string>{"gzip", gzip_of(body)}, {"br", brotli_of(body)},
        {"zstd", zstd_of(body)}}) {
    SCOPED_TRACE(coding);
    EXPECT_EQ(decode_content(coding, data, body.size()).value(), body);
    EXPECT_FALSE(decode_content(coding, data, body.size() - 1).has_value());
  }
}

// A chain multiplies: gzip of a gzip bomb. Each stage is held to the limit.
TEST(DecompressionBomb, ChainedCodingsAreEachLimited) {
  const std::string inner = gzip_of(std::string(32u << 20, '\0'));
  const std::string outer = brotli_of(inner);
  EXPECT_EQ(decode_content("gzip, br", outer, 1u << 20), std::nullopt);
  EXPECT_EQ(decode_content("gzip, br", outer, 64u << 20)->size(), 32u << 20);
}

class HostileFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecap-hostile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

// A sparse 4 GiB "libssl.so.3" (a real ELF header, then nothing) is refused by its size before
// anything reads or scans it.
TEST_F(HostileFiles, HugeSparseFileIsRefusedUnread) {
  const std::string path = dir_ + "/libssl.so.3";
  {
    std::ifstream real("/usr/lib/x86_64-linux-gnu/libssl.so.3", std::ios::binary);
    ASSERT_TRUE(real);
    std::string head(4096, '\0');
    real.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream out(path, std::ios::binary);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
  }
  ASSERT_EQ(truncate(path.c_str(), int64_t{4} << 30), 0);
  const std::string want = "cannot open " + path +
                           ": 4096 MiB is larger than any library or program ecapture hooks "
                           "(2048 MiB)";
  const auto t0 = std::chrono::steady_clock::now();
  auto elf = elf::ElfFile::open(path);
  ASSERT_FALSE(elf);
  EXPECT_EQ(elf.error().message, want);
  auto sniff = elf::sniff_ssl_version_in(path);
  ASSERT_FALSE(sniff);
  EXPECT_EQ(sniff.error().message, want);
  auto go = elf::GoBinary::open(path);
  ASSERT_FALSE(go);
  EXPECT_EQ(go.error().message, want);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The fuzz_go_binary regression input whose 4096 functions are named by the overlapping
// suffixes of one string (tests/fixtures/fuzz/make_go_inputs.py): refused, not copied.
TEST_F(HostileFiles, PclntabWithOverlappingNamesIsRefused) {
  const fs::path fixtures = fs::path(ECAPTURE_TEST_FIXTURES) / "fuzz" / "fuzz_go_binary";
  auto write_body = [&](const char* name) {
    std::vector<uint8_t> input = read_all(fixtures / name);
    EXPECT_GT(input.size(), 1u);
    EXPECT_EQ(input[0], 0);  // a whole file follows
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(input.data() + 1),
               static_cast<std::streamsize>(input.size() - 1));
    return path;
  };
  const std::string bad = write_body("pclntab-overlapping-names");
  auto bin = elf::GoBinary::open(bad);
  ASSERT_FALSE(bin);
  EXPECT_EQ(bin.error().message, bad + ": corrupt Go pclntab (function names overlap)");
  // The same layout with sound names is read, and its functions are found.
  const std::string good = write_body("pclntab-sound");
  auto ok = elf::GoBinary::open(good);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ((*ok)->pclntab_functions(), 8u);
  auto f = (*ok)->find_in_pclntab("main.f3");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->entry, 0x401003u);
  EXPECT_EQ(f->file_offset, 0x1003u);
  EXPECT_EQ((*ok)->ret_offsets(*f).value(), std::vector<uint64_t>{0x1003u});
}

// A key log on a full disk: the line that does not fit is not left cut, the error comes once.
TEST_F(HostileFiles, KeylogWriteFailureLeavesWholeLines) {
  const std::string path = dir_ + "/keys.log";
  auto w = KeylogWriter::open(path);
  ASSERT_TRUE(w);
  const std::string random(64, 'a'), secret(96, 'b');
  ASSERT_TRUE((*w)->write("CLIENT_TRAFFIC_SECRET_0", random, secret).value());
  // /dev/full fails every write with ENOSPC: put it under the writer's descriptor.
  const int full = ::open("/dev/full", O_WRONLY);
  ASSERT_GE(full, 0);
  std::vector<int> fds;
  for (int fd = 3; fd < 256; ++fd) {
    std::error_code ec;
    if (fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec) == fs::path(path)) {
      fds.push_back(fd);
    }
  }
  ASSERT_EQ(fds.size(), 1u);
  ASSERT_EQ(dup2(full, fds[0]), fds[0]);
  ::close(full);
  auto r = (*w)->write("SERVER_TRAFFIC_SECRET_0", random, secret);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(),
            "cannot write key log file " + path + ": No space left on device");
  auto later = (*w)->write("EXPORTER_SECRET", random, secret);
  ASSERT_TRUE(later);
  EXPECT_FALSE(*later);  // dropped, not reported again
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "CLIENT_TRAFFIC_SECRET_0 " + random + " " + secret + "\n");
}

// Every committed regression input runs through its fuzz target (which aborts on a broken
// invariant) without crashing.
TEST(FuzzRegressions, EveryInputReplays) {
  const std::pair<const char*, int (*)(const uint8_t*, size_t)> targets[] = {
      {"fuzz_elf", fuzz_entry_elf},
      {"fuzz_go_binary", fuzz_entry_go_binary},
      {"fuzz_version_sniff", fuzz_entry_version_sniff},
      {"fuzz_decompress", fuzz_entry_decompress},
      {"fuzz_pcap_filter", fuzz_entry_pcap_filter},
      {"fuzz_api_config", fuzz_entry_api_config}};
  const fs::path root = fs::path(ECAPTURE_TEST_FIXTURES) / "fuzz";
  size_t replayed = 0;
  for (const auto& [name, entry] : targets) {
    if (!fs::exists(root / name)) continue;
    for (const auto& file : fs::directory_iterator(root / name)) {
      SCOPED_TRACE(file.path().string());
      std::vector<uint8_t> input = read_all(file.path());
      EXPECT_EQ(entry(input.data(), input.size()), 0);
      ++replayed;
    }
  }
  EXPECT_GE(replayed, 2u);
}

}  // namespace
}  // namespace ecapture
