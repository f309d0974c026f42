// The libpcap -> eBPF filter translation run by the kernel (BPF_PROG_TEST_RUN) against frames,
// compared with libpcap's own matching of the same frames.
#include "bpf/classic_filter.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "output/pcap_filter.h"

namespace ecapture {
namespace {

constexpr int kMatched = 7;  // what the tail-called stand-in for the copier returns

// An Ethernet + IPv4 + TCP (or UDP) frame with `payload` bytes after the L4 header.
std::vector<uint8_t> frame(bool tcp, std::array<uint8_t, 4> src, std::array<uint8_t, 4> dst,
                           uint16_t sport, uint16_t dport, uint8_t tcp_flags, size_t payload) {
  size_t l4 = tcp ? 20 : 8;
  std::vector<uint8_t> f(14 + 20 + l4 + payload, 0);
  f[12] = 0x08;  // IPv4
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  uint16_t total = static_cast<uint16_t>(20 + l4 + payload);
  ip[2] = total >> 8;
  ip[3] = total & 0xff;
  ip[8] = 64;
  ip[9] = tcp ? 6 : 17;
  std::memcpy(ip + 12, src.data(), 4);
  std::memcpy(ip + 16, dst.data(), 4);
  uint8_t* th = ip + 20;
  th[0] = sport >> 8;
  th[1] = sport & 0xff;
  th[2] = dport >> 8;
  th[3] = dport & 0xff;
  if (tcp) {
    th[12] = 0x50;
    th[13] = tcp_flags;
  } else {
    th[4] = static_cast<uint8_t>((8 + payload) >> 8);
    th[5] = static_cast<uint8_t>((8 + payload) & 0xff);
  }
  for (size_t i = 0; i < payload; ++i) f[14 + 20 + l4 + i] = static_cast<uint8_t>('a' + i % 26);
  return f;
}

class ClassicFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "loading BPF programs needs root";
    bpf_insn ret7[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, kMatched},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    target_ = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ecap_t_target", "GPL", ret7, 2, nullptr);
    ASSERT_GE(target_, 0) << "cannot load the stand-in copier: " << std::strerror(-target_);
    progs_ = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "ecap_t_progs", 4, 4, 2, nullptr);
    ASSERT_GE(progs_, 0);
    uint32_t slot = 1;
    ASSERT_EQ(bpf_map_update_elem(progs_, &slot, &target_, BPF_ANY), 0);
  }
  void TearDown() override {
    if (progs_ >= 0) ::close(progs_);
    if (target_ >= 0) ::close(target_);
  }

  // The translated filter's verdict on `f`: true when it tail-called the copier.
  bool kernel_matches(int prog, const std::vector<uint8_t>& f) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(prog, &opts), 0);
    EXPECT_TRUE(opts.retval == kMatched || static_cast<int>(opts.retval) == -1) << opts.retval;
    return opts.retval == kMatched;
  }

  int target_ = -1;
  int progs_ = -1;
};

TEST_F(ClassicFilterTest, KernelVerdictsEqualLibpcapsOnEveryFrame) {
  const std::vector<std::vector<uint8_t>> frames = {
      frame(true, {10, 0, 0, 1}, {10, 0, 0, 2}, 40000, 443, 0x02, 0),    // SYN to 443
      frame(true, {10, 0, 0, 2}, {10, 0, 0, 1}, 443, 40000, 0x10, 300),  // data from 443
      frame(true, {127, 0, 0, 1}, {127, 0, 0, 1}, 5000, 8080, 0x18, 7),
      frame(false, {192, 168, 1, 9}, {8, 8, 8, 8}, 5353, 53, 0, 40),     // UDP DNS
      frame(false, {10, 0, 0, 1}, {10, 0, 0, 3}, 1234, 443, 0, 1200),    // UDP 443 (QUIC)
  };
  const char* expressions[] = {
      "tcp port 443",        "udp",   "tcp[13] & 2 != 0", "len > 100", "host 10.0.0.1",
      "src net 10.0.0.0/8 and not dst port 53", "ip6", "tcp and port 8080", "greater 1000",
      "udp dst port 53 or tcp[tcpflags] & tcp-ack != 0", "ip[8] = 64 and ip[2:2] < 100",
  };
  for (const char* expr : expressions) {
    auto filter = PcapFilter::compile(expr);
    ASSERT_TRUE(filter.ok()) << expr;
    auto insns = (*filter)->instructions();
    ASSERT_FALSE(insns.empty()) << expr;
    auto prog = bpf::load_classic_filter(insns, progs_, 1, "ecap_t_filter");
    ASSERT_TRUE(prog.ok()) << expr << ": " << prog.error().to_string();
    for (size_t i = 0; i < frames.size(); ++i) {
      const auto& f = frames[i];
      bool want = (*filter)->matches(f, static_cast<uint32_t>(f.size()));
      EXPECT_EQ(kernel_matches(*prog, f), want) << expr << " on frame " << i;
    }
    ::close(*prog);
  }
}

TEST_F(ClassicFilterTest, ExactVerdicts) {
  auto filter = PcapFilter::compile("tcp dst port 443");
  ASSERT_TRUE(filter.ok());
  auto prog = bpf::load_classic_filter((*filter)->instructions(), progs_, 1, "ecap_t_filter");
  ASSERT_TRUE(prog.ok()) << prog.error().to_string();
  EXPECT_TRUE(kernel_matches(*prog, frame(true, {1, 2, 3, 4}, {5, 6, 7, 8}, 999, 443, 0, 10)));
  EXPECT_FALSE(kernel_matches(*prog, frame(true, {1, 2, 3, 4}, {5, 6, 7, 8}, 443, 999, 0, 10)));
  EXPECT_FALSE(kernel_matches(*prog, frame(false, {1, 2, 3, 4}, {5, 6, 7, 8}, 999, 443, 0, 10)));
  // A frame cut short inside the TCP header: the load fails, so no match (as in libpcap).
  auto cut = frame(true, {1, 2, 3, 4}, {5, 6, 7, 8}, 999, 443, 0, 0);
  cut.resize(14 + 20 + 2);
  EXPECT_FALSE(kernel_matches(*prog, cut));
  ::close(*prog);
}

TEST(ClassicFilter, RefusesWhatItCannotTranslate) {
  // A Linux ancillary load (SKF_AD_OFF + SKF_AD_PROTOCOL), which libpcap emits only for live
  // Linux captures.
  bpf::ClassicInsn ancillary[] = {{0x28, 0, 0, 0xfffff000u}, {0x06, 0, 0, 0}};
  auto r = bpf::load_classic_filter(ancillary, -1, 0, "ecap_t_bad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ancillary"), std::string::npos) << r.error().message;
  EXPECT_FALSE(bpf::load_classic_filter({}, -1, 0, "ecap_t_empty").ok());
}

}  // namespace
}  // namespace ecapture
