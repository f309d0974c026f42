// ChunkAssembler and tuple decoding on records built exactly as bpf/openssl.bpf.c emits them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "modules/openssl/openssl_config.h"
#include "modules/openssl/openssl_events.h"

namespace ecapture::openssl {
namespace {

std::vector<uint8_t> record(uint32_t tid, uint64_t conn, uint64_t total, uint64_t offset,
                            std::string_view data, uint8_t dir = ECAP_DIR_WRITE) {
  tls_data_event h{};
  h.timestamp_ns = 1000;
  h.conn_id = conn;
  h.total_len = total;
  h.offset = offset;
  h.pid = 4242;
  h.tid = tid;
  h.uid = 1000;
  h.fd = 7;
  h.data_len = static_cast<uint32_t>(data.size());
  h.direction = dir;
  std::memcpy(h.comm, "curl", 4);
  h.tuple.family = AF_INET;
  h.tuple.lport = 40000;
  h.tuple.rport = 443;
  inet_pton(AF_INET, "127.0.0.1", h.tuple.laddr);
  inet_pton(AF_INET, "10.1.2.3", h.tuple.raddr);
  std::vector<uint8_t> out(sizeof(h) + data.size());
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), data.data(), data.size());
  return out;
}

struct Collector {
  std::vector<DataEvent> events;
  ChunkAssembler assembler{5000, [this](DataEvent&& e) { events.push_back(std::move(e)); }};
};

TEST(ChunkAssemblerTest, SingleChunkCallBecomesOneEvent) {
  Collector c;
  ASSERT_TRUE(c.assembler.add(record(1, 0xabc, 5, 0, "hello")));
  ASSERT_EQ(c.events.size(), 1u);
  const DataEvent& e = c.events[0];
  EXPECT_EQ(e.payload, "hello");
  EXPECT_EQ(e.length, 5u);
  EXPECT_EQ(e.timestamp_ns, 6000u);
  EXPECT_EQ(e.pid, 4242u);
  EXPECT_EQ(e.tid, 1u);
  EXPECT_EQ(e.uid, 1000u);
  EXPECT_EQ(e.fd, 7);
  EXPECT_EQ(e.comm, "curl");
  EXPECT_EQ(e.direction, Direction::kWrite);
  EXPECT_EQ(e.src.to_string(), "127.0.0.1:40000");
  EXPECT_EQ(e.dst.to_string(), "10.1.2.3:443");
  EXPECT_EQ(c.assembler.pending(), 0u);
}

TEST(ChunkAssemblerTest, ReadSwapsEndpoints) {
  Collector c;
  ASSERT_TRUE(c.assembler.add(record(1, 1, 2, 0, "ok", ECAP_DIR_READ)));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].direction, Direction::kRead);
  EXPECT_EQ(c.events[0].src.to_string(), "10.1.2.3:443");
  EXPECT_EQ(c.events[0].dst.to_string(), "127.0.0.1:40000");
}

TEST(ChunkAssemblerTest, ChunksOfInterleavedThreadsReassembleInOrder) {
  Collector c;
  std::string big_a(3 * 1000, 'a'), big_b(2 * 1000, 'b');
  for (size_t i = 0; i < big_a.size(); ++i) big_a[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(c.assembler.add(record(1, 10, 3000, 0, std::string_view(big_a).substr(0, 1000))));
  ASSERT_TRUE(c.assembler.add(record(2, 20, 2000, 0, std::string_view(big_b).substr(0, 1000))));
  ASSERT_TRUE(c.assembler.add(record(1, 10, 3000, 1000, std::string_view(big_a).substr(1000, 1000))));
  ASSERT_TRUE(c.assembler.add(record(2, 20, 2000, 1000, std::string_view(big_b).substr(1000))));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].tid, 2u);
  ASSERT_TRUE(c.assembler.add(record(1, 10, 3000, 2000, std::string_view(big_a).substr(2000))));
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].payload, big_a);
  EXPECT_EQ(c.events[1].length, 3000u);
}

TEST(ChunkAssemblerTest, LostTailIsEmittedWhenTheThreadMovesOnAndAtFlush) {
  Collector c;
  ASSERT_TRUE(c.assembler.add(record(1, 10, 10, 0, "01234")));  // tail of 5 bytes lost
  EXPECT_EQ(c.events.size(), 0u);
  ASSERT_TRUE(c.assembler.add(record(1, 10, 3, 0, "xyz")));    // next call of the thread
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].payload, "01234");
  EXPECT_EQ(c.events[0].length, 10u);
  EXPECT_EQ(c.events[1].payload, "xyz");
  ASSERT_TRUE(c.assembler.add(record(3, 30, 8, 0, "abcd")));
  c.assembler.flush();
  ASSERT_EQ(c.events.size(), 3u);
  EXPECT_EQ(c.events[2].payload, "abcd");
  EXPECT_EQ(c.assembler.pending(), 0u);
}

TEST(ChunkAssemblerTest, MalformedRecordsAreRejected) {
  Collector c;
  std::vector<uint8_t> shortrec(10, 0);
  EXPECT_FALSE(c.assembler.add(shortrec));
  auto r = record(1, 1, 5, 0, "hello");
  r.resize(r.size() - 2);  // data_len says 5, only 3 present
  auto res = c.assembler.add(r);
  ASSERT_FALSE(res);
  EXPECT_NE(res.error().message.find("data_len 5"), std::string::npos);
  EXPECT_TRUE(c.events.empty());
}

std::vector<uint8_t> conn_record(uint32_t pid, uint64_t conn, int32_t fd) {
  auto r = record(9, conn, 0, 0, "");
  auto* h = reinterpret_cast<tls_data_event*>(r.data());
  h->kind = TLS_RECORD_CONN;
  h->pid = pid;
  h->fd = fd;
  h->tuple.lport = 5555;
  return r;
}

TEST(ChunkAssemblerTest, UnknownFdIsHeldUntilTheConnectionIsReported) {
  Collector c;
  auto rec = record(1, 77, 3, 0, "abc");
  reinterpret_cast<tls_data_event*>(rec.data())->fd = -1;
  ASSERT_TRUE(c.assembler.add(rec));
  ASSERT_TRUE(c.assembler.add(record(2, 88, 2, 0, "zz")));  // other connection, fd known
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.assembler.held(), 1u);
  ASSERT_TRUE(c.assembler.add(conn_record(4242, 77, 19)));
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].payload, "abc");
  EXPECT_EQ(c.events[1].fd, 19);
  EXPECT_EQ(c.events[1].src.to_string(), "127.0.0.1:5555");
  // Later calls of the same connection take the reported fd even if the kernel still says -1.
  rec = record(1, 77, 2, 0, "de");
  reinterpret_cast<tls_data_event*>(rec.data())->fd = -1;
  ASSERT_TRUE(c.assembler.add(rec));
  ASSERT_EQ(c.events.size(), 3u);
  EXPECT_EQ(c.events[2].fd, 19);
}

TEST(ChunkAssemblerTest, AKnownCallReleasesEarlierHeldCallsFirst) {
  Collector c;
  auto rec = record(1, 55, 3, 0, "one", ECAP_DIR_READ);
  reinterpret_cast<tls_data_event*>(rec.data())->fd = -1;
  ASSERT_TRUE(c.assembler.add(rec));
  EXPECT_TRUE(c.events.empty());
  ASSERT_TRUE(c.assembler.add(record(2, 55, 3, 0, "two")));  // same connection, fd known
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].payload, "one");
  EXPECT_EQ(c.events[0].fd, 7);
  EXPECT_EQ(c.events[0].src.to_string(), "10.1.2.3:443");  // READ: the peer sent it
  EXPECT_EQ(c.events[1].payload, "two");
  EXPECT_EQ(c.assembler.held(), 0u);
}

TEST(ChunkAssemblerTest, HeldCallsAreReleasedAfterTheHoldTime) {
  Collector c;
  auto rec = record(1, 77, 3, 0, "abc");
  reinterpret_cast<tls_data_event*>(rec.data())->fd = -1;
  ASSERT_TRUE(c.assembler.add(rec));  // kernel timestamp 1000 ns
  c.assembler.tick(1000 + ChunkAssembler::kHoldNs - 1);
  EXPECT_TRUE(c.events.empty());
  c.assembler.tick(1000 + ChunkAssembler::kHoldNs);
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].fd, -1);
  EXPECT_EQ(c.events[0].src.to_string(), "127.0.0.1:40000");  // the kernel's tuple, kept
}

TEST(ChunkAssemblerTest, ClosedSocketKeepsTheConnectionsLastTuple) {
  Collector c;
  ASSERT_TRUE(c.assembler.add(record(1, 77, 2, 0, "hi")));
  auto rec = record(1, 77, 3, 0, "bye", ECAP_DIR_READ);
  reinterpret_cast<tls_data_event*>(rec.data())->tuple.lport = 0;  // unhashed after FIN
  ASSERT_TRUE(c.assembler.add(rec));
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].dst.to_string(), "127.0.0.1:40000");
  EXPECT_EQ(c.events[1].src.to_string(), "10.1.2.3:443");
}

TEST(TupleTest, Ipv6AndUnknown) {
  ecap_sock_tuple t{};
  Endpoint src, dst;
  tuple_to_endpoints(t, Direction::kWrite, &src, &dst);
  EXPECT_EQ(src.to_string(), "?");
  EXPECT_EQ(dst.to_string(), "?");
  t.family = AF_INET6;
  t.lport = 5000;
  t.rport = 443;
  inet_pton(AF_INET6, "::1", t.laddr);
  inet_pton(AF_INET6, "2001:db8::5", t.raddr);
  tuple_to_endpoints(t, Direction::kWrite, &src, &dst);
  EXPECT_EQ(src.to_string(), "[::1]:5000");
  EXPECT_EQ(dst.to_string(), "[2001:db8::5]:443");
}

TEST(OpenSslConfigTest, ModelValidation) {
  OpenSslConfig c;
  EXPECT_TRUE(c.validate());
  c.model = "TEXT";
  EXPECT_TRUE(c.validate());
  c.model = "bogus";
  EXPECT_EQ(c.validate().error().message,
            "invalid value 'bogus' for -m/--model: allowed values are text, keylog (key), pcap "
            "(pcapng)");
  c.model = "keylog";
  EXPECT_TRUE(c.validate());
  c.model = "pcap";
  c.pcap_filter = "tcp port 443";
  EXPECT_TRUE(c.validate());
  c.pcapfile.clear();
  EXPECT_NE(c.validate().error().message.find("-w/--pcapfile"), std::string::npos);
  c.pcapfile = "save.pcapng";
  c.pcap_filter.clear();
  EXPECT_TRUE(parse_capture_mode("key").ok());
  EXPECT_EQ(*parse_capture_mode("PCAPNG"), CaptureMode::kPcap);
  c.model = "text";
  c.pcap_filter = "tcp port 443";
  EXPECT_NE(c.validate().error().message.find("-m pcap only"), std::string::npos);
  c.pcap_filter.clear();
  c.global.btf = 9;
  EXPECT_NE(c.validate().error().message.find("--btf"), std::string::npos);
}

}  // namespace
}  // namespace ecapture::openssl
