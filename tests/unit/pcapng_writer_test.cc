// pcapng writer output read back by tshark/capinfos; frame → connection keys; pcap filters.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "output/pcap_filter.h"
#include "output/pcap_session.h"
#include "output/pcapng_writer.h"

namespace ecapture {
namespace {

std::string run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p.get())) > 0) out.append(buf, n);
  return out;
}

// Ethernet + IPv4 + TCP (SYN) from 127.0.0.1:40000 to 127.0.0.2:443.
std::vector<uint8_t> tcp_frame() {
  std::vector<uint8_t> f(54, 0);
  f[12] = 0x08;  // IPv4
  f[14] = 0x45;
  f[17] = 40;  // total length
  f[22] = 64;  // ttl
  f[23] = 6;   // TCP
  inet_pton(AF_INET, "127.0.0.1", &f[26]);
  inet_pton(AF_INET, "127.0.0.2", &f[30]);
  f[34] = 40000 >> 8, f[35] = 40000 & 0xff;
  f[36] = 443 >> 8, f[37] = 443 & 0xff;
  f[46] = 0x50;  // data offset 5
  f[47] = 0x02;  // SYN
  return f;
}

class PcapngTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecap-pcapng-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/out.pcapng";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, path_;
};

TEST_F(PcapngTest, TsharkReadsPacketsCommentsFilterAndSecrets) {
  if (system("command -v tshark >/dev/null && command -v capinfos >/dev/null") != 0) {
    GTEST_SKIP() << "SKIPPED: tshark/capinfos not installed (scripts/setup.sh installs them)";
  }
  {
    auto w = PcapngWriter::create(path_, {{"lo", 1, "tcp port 443", 262144}}, "ecapture test");
    ASSERT_TRUE(w) << w.error().message;
    ASSERT_TRUE((*w)->write_secrets(
        "CLIENT_RANDOM 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f "
        "abababababababababababababababababababababababababababababababababababababababababab"
        "ababababababab\n"));
    auto f = tcp_frame();
    ASSERT_TRUE((*w)->write_packet(0, 1700000000123456789ull, f, 54, "pid=4242 comm=curl"));
    ASSERT_TRUE((*w)->write_packet(0, 1700000001000000000ull, f, 54, ""));
    ASSERT_TRUE((*w)->flush());
    EXPECT_EQ((*w)->packets(), 2u);
  }
  std::string fields = run("tshark -n -r " + path_ +
                           " -T fields -e frame.time_epoch -e tcp.srcport -e tcp.dstport "
                           "-e frame.comment 2>/dev/null");
  EXPECT_EQ(fields,
            "1700000000.123456789\t40000\t443\tpid=4242 comm=curl\n"
            "1700000001.000000000\t40000\t443\t\n");
  std::string info = run("capinfos " + path_ + " 2>/dev/null");
  EXPECT_NE(info.find("Number of packets:   2"), std::string::npos) << info;
  EXPECT_NE(info.find("tcp port 443"), std::string::npos) << info;
  EXPECT_NE(info.find("Number of decryption secrets in file: 1"), std::string::npos) << info;
}

TEST_F(PcapngTest, ExistingFileIsNeverOverwritten) {
  {
    std::ofstream f(path_);
    f << "precious";
  }
  auto w = PcapngWriter::create(path_, {{"lo", 1, "", 262144}}, "t");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("exists"), std::string::npos);
  std::ifstream in(path_);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
}

TEST(FrameKeyTest, EndpointsMatchTheKernelTuple) {
  auto f = tcp_frame();
  FrameEndpoints e = frame_endpoints(f);
  ASSERT_FALSE(e.src.empty());
  // The same endpoints as the kernel's tuple describes them (host-order ports).
  ecap_sock_tuple t{};
  t.family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", t.laddr);
  inet_pton(AF_INET, "127.0.0.2", t.raddr);
  t.lport = 40000;
  t.rport = 443;
  EXPECT_EQ(e.src, endpoint_key(AF_INET, t.laddr, t.lport));
  EXPECT_EQ(e.dst, endpoint_key(AF_INET, t.raddr, t.rport));
  EXPECT_NE(e.src, e.dst);
  f[23] = 1;  // ICMP: no ports
  EXPECT_TRUE(frame_endpoints(f).src.empty());
}

TEST(PcapFilterTest, CompilesMatchesAndRejects) {
  auto f = PcapFilter::compile("tcp port 443");
  ASSERT_TRUE(f);
  auto frame = tcp_frame();
  EXPECT_TRUE((*f)->matches(frame, 54));
  auto g = PcapFilter::compile("udp port 53");
  ASSERT_TRUE(g);
  EXPECT_FALSE((*g)->matches(frame, 54));
  auto bad = PcapFilter::compile("tcp portt 443");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("invalid pcap filter expression 'tcp portt 443'"),
            std::string::npos);
}

}  // namespace
}  // namespace ecapture
