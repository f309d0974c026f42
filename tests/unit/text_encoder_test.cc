// Text output: header layout, truncation, hex dump, binary detection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <ctime>

#include "output/text_encoder.h"

namespace ecapture {
namespace {

DataEvent sample(std::string payload) {
  DataEvent e;
  e.timestamp_ns = 1700000000123456789ull;
  e.pid = 10;
  e.tid = 11;
  e.uid = 12;
  e.comm = "curl";
  e.fd = 5;
  e.direction = Direction::kWrite;
  e.src.family = e.dst.family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", e.src.addr.data());
  inet_pton(AF_INET, "127.0.0.2", e.dst.addr.data());
  e.src.port = 40000;
  e.dst.port = 8443;
  e.length = payload.size();
  e.payload = std::move(payload);
  return e;
}

std::string header_time(uint64_t ns) { return "[" + format_timestamp(ns) + "]"; }

TEST(TextEncoderTest, HeaderAndRawPayload) {
  auto e = sample("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(encode_text(e, {}),
            header_time(e.timestamp_ns) +
                " WRITE pid=10 tid=11 uid=12 comm=curl fd=5 127.0.0.1:40000 -> 127.0.0.2:8443 "
                "len=18\nGET / HTTP/1.1\r\n\r\n\n");
}

TEST(TextEncoderTest, TimestampHasMicroseconds) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(format_timestamp(1700000000123456789ull), "2023-11-14 22:13:20.123456");
}

TEST(TextEncoderTest, TsizeTruncates) {
  auto e = sample("0123456789abcdef");
  std::string out = encode_text(e, {false, 10});
  EXPECT_NE(out.find(" len=16 shown=10\n0123456789\n"), std::string::npos) << out;
}

TEST(TextEncoderTest, HexDumpWhenAskedOrBinary) {
  auto e = sample(std::string("AB\x00\x01", 4));
  std::string out = encode_text(e, {});
  EXPECT_NE(out.find(" len=4 hex\n00000000  41 42 00 01 "), std::string::npos) << out;
  EXPECT_NE(out.find("|AB..|\n\n"), std::string::npos) << out;
  auto t = sample("hi");
  EXPECT_NE(encode_text(t, {true, 0}).find(" len=2 hex\n00000000  68 69 "), std::string::npos);
}

TEST(TextEncoderTest, HexDumpLayout) {
  std::string data;
  for (int i = 0; i < 20; ++i) data += static_cast<char>('a' + i);
  EXPECT_EQ(hex_dump(data),
            "00000000  61 62 63 64 65 66 67 68  69 6a 6b 6c 6d 6e 6f 70  |abcdefghijklmnop|\n"
            "00000010  71 72 73 74                                       |qrst|\n");
}

TEST(TextEncoderTest, TextDetection) {
  EXPECT_TRUE(looks_like_text("plain\r\n\ttext"));
  EXPECT_TRUE(looks_like_text("caf\xc3\xa9"));
  EXPECT_TRUE(looks_like_text("cut \xc3"));  // a character split at the end of a chunk
  EXPECT_FALSE(looks_like_text(std::string("\x00", 1)));
  EXPECT_FALSE(looks_like_text("\x16\x03\x01"));
  EXPECT_FALSE(looks_like_text("\xff\xfe"));
}

TEST(TextEncoderTest, UnknownEndpointsPrintQuestionMarks) {
  auto e = sample("x");
  e.src = Endpoint{};
  e.dst = Endpoint{};
  EXPECT_NE(encode_text(e, {}).find(" fd=5 ? -> ? len=1\n"), std::string::npos);
}

}  // namespace
}  // namespace ecapture
