// HTTP/1 and HTTP/2 parsing through StreamDecoder: golden streams fed whole and split at every
// byte, decoded bodies (chunked, gzip, deflate, br, zstd), HPACK dynamic-table reuse,
// interleaved HTTP/2 streams, truncated and garbage input.
#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>
#include <vector>

#include "compress_util.h"
#include "events/parsers/decompress.h"
#include "events/stream_decoder.h"

namespace ecapture {
namespace {

using Chunks = std::vector<std::string>;

DataEvent call(std::string bytes, Direction dir = Direction::kWrite) {
  DataEvent e;
  e.pid = 42;
  e.tid = 43;
  e.comm = "client";
  e.fd = 7;
  e.direction = dir;
  e.length = bytes.size();
  e.payload = std::move(bytes);
  return e;
}

// Feeds the chunks as separate calls, then flushes (shutdown).
std::vector<Message> run(const Chunks& chunks, ConnShared* shared = nullptr,
                         ParserLimits limits = {}) {
  ConnShared own;
  std::vector<Message> out;
  StreamDecoder d(limits, shared ? shared : &own, [&](Message&& m) { out.push_back(std::move(m)); });
  for (const auto& c : chunks) d.feed(call(c), false);
  d.flush();
  return out;
}

// A compact form for comparing message sequences.
std::string summary(const std::vector<Message>& ms) {
  std::string s;
  for (const auto& m : ms) {
    s += std::string(protocol_name(m.proto)) + (is_request(m.proto) ? " req " : " ") +
         std::to_string(m.stream_id) + (m.http.partial ? " partial" : "") + " [" +
         m.event.payload + "]\n";
  }
  return s;
}

// Every split into two calls, and byte-by-byte, gives the same messages as one call.
void expect_split_invariant(const std::string& stream) {
  const std::string whole = summary(run({stream}));
  for (size_t i = 1; i < stream.size(); ++i) {
    ASSERT_EQ(summary(run({stream.substr(0, i), stream.substr(i)})), whole) << "split at " << i;
  }
  Chunks bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  ASSERT_EQ(summary(run(bytes)), whole) << "byte by byte";
}

using test_util::gzip;

std::string brotli(const std::string& in) {
  size_t n = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(n, '\0');
  BrotliEncoderCompress(5, 22, BROTLI_MODE_TEXT, in.size(),
                        reinterpret_cast<const uint8_t*>(in.data()), &n,
                        reinterpret_cast<uint8_t*>(out.data()));
  out.resize(n);
  return out;
}

std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

std::string chunked(const std::string& body, size_t piece) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) {
    std::string p = body.substr(i, piece);
    char hex[16];
    snprintf(hex, sizeof(hex), "%zx", p.size());
    out += std::string(hex) + "\r\n" + p + "\r\n";
  }
  return out + "0\r\n\r\n";
}

const std::string kText = "Hello, decoded world! Hello, decoded world! 0123456789\n";

// ---- HTTP/1 ------------------------------------------------------------------------------------

TEST(Http1Test, RequestWithBodyAndPipelining) {
  const std::string a = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string b = "GET /b?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n";
  auto ms = run({a + b});
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].proto, Protocol::kHttp1Request);
  EXPECT_EQ(ms[0].event.payload, a);
  EXPECT_EQ(ms[0].http.method, "POST");
  EXPECT_EQ(ms[0].wire_bytes, a.size());
  EXPECT_EQ(ms[1].event.payload, b);
  EXPECT_EQ((ms[1].http.path), "/b?q=1");
  EXPECT_EQ(ms[1].http.authority, "example.test");
  EXPECT_FALSE(ms[1].http.partial);
  expect_split_invariant(a + b);
}

TEST(Http1Test, ChunkedGzipResponseIsDecoded) {
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
      "Content-Encoding: gzip\r\n\r\n";
  const std::string wire = head + chunked(gzip(kText), 7);
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].proto, Protocol::kHttp1Response);
  EXPECT_EQ(ms[0].http.status, 200);
  EXPECT_EQ(ms[0].event.payload, head + kText);
  EXPECT_EQ(ms[0].http.content_encoding, "gzip");
  EXPECT_EQ(ms[0].wire_bytes, wire.size());
  expect_split_invariant(wire + wire);
}

TEST(Http1Test, DeflateBrotliZstdBodies) {
  struct Case {
    const char* coding;
    std::string body;
  } cases[] = {{"deflate", gzip(kText, 15)}, {"br", brotli(kText)}, {"zstd", zstd(kText)},
               {"gzip, br", brotli(gzip(kText))}};
  for (const auto& c : cases) {
    std::string head = "HTTP/1.1 200 OK\r\nContent-Encoding: " + std::string(c.coding) +
                       "\r\nContent-Length: " + std::to_string(c.body.size()) + "\r\n\r\n";
    auto ms = run({head + c.body});
    ASSERT_EQ(ms.size(), 1u) << c.coding;
    EXPECT_EQ(ms[0].event.payload, head + kText) << c.coding;
    EXPECT_TRUE(ms[0].http.body_decoded) << c.coding;
  }
}

TEST(Http1Test, CorruptBodyIsShownAsSent) {
  std::string body = "not gzip at all";
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 15\r\n\r\n" + body;
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].event.payload, wire);
  EXPECT_FALSE(ms[0].http.body_decoded);
}

TEST(Http1Test, HeadResponseHasNoBody) {
  ConnShared shared;
  auto req = run({"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"}, &shared);
  ASSERT_EQ(req.size(), 1u);
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
  const std::string next = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  shared.request_methods.push_back("GET");
  auto ms = run({resp + next}, &shared);
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].event.payload, resp);
  EXPECT_EQ(ms[1].http.status, 404);
}

TEST(Http1Test, TruncatedMessageIsFlushedPartial) {
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part";
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_TRUE(ms[0].http.partial);
  EXPECT_EQ(ms[0].event.payload, wire);
}

TEST(Http1Test, BodyBeyondLimitIsStreamedRaw) {
  ParserLimits limits;
  limits.max_message = 64;
  std::string body(200, 'b');
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n";
  auto ms = run({head + body.substr(0, 100), body.substr(100), "GET / HTTP/1.1\r\n\r\n"}, nullptr,
                limits);
  ASSERT_EQ(ms.size(), 3u) << summary(ms);
  EXPECT_TRUE(ms[0].http.partial);
  EXPECT_EQ(ms[0].event.payload, head + body.substr(0, 100));
  EXPECT_EQ(ms[1].proto, Protocol::kRaw);
  EXPECT_EQ(ms[1].event.payload, body.substr(100));
  EXPECT_EQ(ms[2].proto, Protocol::kHttp1Request);
}

TEST(Http1Test, NonHttpIsRawPerCall) {
  auto ms = run({"hello there\n", "\x01\x02\x03"});
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].proto, Protocol::kRaw);
  EXPECT_EQ(ms[0].event.payload, "hello there\n");
  EXPECT_EQ(ms[1].event.payload, "\x01\x02\x03");
}

TEST(Http1Test, LostBytesResetTheParser) {
  ConnShared shared;
  std::vector<Message> out;
  StreamDecoder d({}, &shared, [&](Message&& m) { out.push_back(std::move(m)); });
  d.feed(call("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), false);
  DataEvent lost = call("defg");
  lost.length = 100;  // most of the call did not arrive
  d.feed(lost, false);
  d.feed(call("GET /next HTTP/1.1\r\n\r\n"), false);
  ASSERT_EQ(out.size(), 3u) << summary(out);
  EXPECT_TRUE(out[0].http.partial);
  EXPECT_EQ(out[1].proto, Protocol::kRaw);
  EXPECT_EQ(out[1].event.length, 100u);
  EXPECT_EQ(out[2].http.path, "/next");
}

// ---- HTTP/2 ------------------------------------------------------------------------------------

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  f += static_cast<char>(payload.size() >> 16);
  f += static_cast<char>(payload.size() >> 8);
  f += static_cast<char>(payload.size());
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(stream >> 24);
  f += static_cast<char>(stream >> 16);
  f += static_cast<char>(stream >> 8);
  f += static_cast<char>(stream);
  return f + payload;
}

class Hpack {
 public:
  Hpack() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Hpack() { nghttp2_hd_deflate_del(d_); }
  std::string encode(const std::vector<std::pair<std::string, std::string>>& h) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [k, v] : h) {
      nv.push_back({(uint8_t*)k.data(), (uint8_t*)v.data(), k.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    auto n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                   nv.data(), nv.size());
    out.resize(static_cast<size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

const std::string kPrefaceStr(kHttp2Preface);
const std::string kSettings = frame(0x4, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6));

TEST(Http2Test, HpackDynamicTableReuseAcrossRequests) {
  Hpack enc;
  std::vector<std::pair<std::string, std::string>> h1 = {
      {":method", "GET"}, {":scheme", "https"}, {":authority", "example.test:8443"},
      {":path", "/first"}, {"x-custom-token", "a-long-value-that-goes-in-the-table"}};
  auto h2 = h1;
  h2[3].second = "/second";
  std::string b1 = enc.encode(h1), b2 = enc.encode(h2);
  ASSERT_LT(b2.size(), b1.size() / 2) << "the second block must reuse the dynamic table";
  std::string wire = kPrefaceStr + kSettings + frame(0x1, 0x5, 1, b1) + frame(0x1, 0x5, 3, b2);
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 2u) << summary(ms);
  EXPECT_EQ(ms[1].proto, Protocol::kHttp2Request);
  EXPECT_EQ(ms[1].stream_id, 3u);
  EXPECT_EQ(ms[1].http.path, "/second");
  EXPECT_EQ(ms[1].http.authority, "example.test:8443");
  EXPECT_EQ(ms[1].event.payload,
            ":method: GET\r\n:scheme: https\r\n:authority: example.test:8443\r\n:path: /second\r\n"
            "x-custom-token: a-long-value-that-goes-in-the-table\r\n\r\n");
  expect_split_invariant(wire);
}

TEST(Http2Test, InterleavedStreamsContinuationAndGzip) {
  Hpack enc;
  std::string body1 = gzip(kText);
  std::string hb1 = enc.encode({{":status", "200"}, {"content-encoding", "gzip"},
                                {"content-type", "text/plain"}});
  std::string hb3 = enc.encode({{":status", "404"}, {"server", "unit"}});
  // Server side: SETTINGS, HEADERS s1 split into HEADERS+CONTINUATION, HEADERS s3, DATA
  // interleaved, padded DATA on s1.
  std::string wire = kSettings + frame(0x1, 0x0, 1, hb1.substr(0, 3)) +
                     frame(0x9, 0x4, 1, hb1.substr(3)) + frame(0x1, 0x4, 3, hb3) +
                     frame(0x0, 0x0, 1, body1.substr(0, 10)) + frame(0x0, 0x1, 3, "gone") +
                     frame(0x8, 0, 0, std::string("\0\0\1\0", 4)) +
                     frame(0x0, 0x9, 1, std::string("\x02", 1) + body1.substr(10) + "pp");
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 2u) << summary(ms);
  EXPECT_EQ(ms[0].stream_id, 3u);
  EXPECT_EQ(ms[0].http.status, 404);
  EXPECT_EQ(ms[0].event.payload, ":status: 404\r\nserver: unit\r\n\r\ngone");
  EXPECT_EQ(ms[1].stream_id, 1u);
  EXPECT_EQ(ms[1].proto, Protocol::kHttp2Response);
  EXPECT_EQ(ms[1].event.payload,
            ":status: 200\r\ncontent-encoding: gzip\r\ncontent-type: text/plain\r\n\r\n" + kText);
  EXPECT_EQ(ms[1].http.content_encoding, "gzip");
  expect_split_invariant(wire);
}

TEST(Http2Test, GrpcMessagesAreShownAsSuch) {
  Hpack enc;
  std::string hb = enc.encode({{":method", "POST"}, {":path", "/svc/Method"},
                               {"content-type", "application/grpc"}});
  std::string msg = std::string("\0\0\0\0\3abc", 8) + std::string("\0\0\0\0\2hi", 7);
  std::string wire = kPrefaceStr + frame(0x1, 0x4, 1, hb) + frame(0x0, 0x1, 1, msg);
  auto ms = run({wire});
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].event.payload,
            ":method: POST\r\n:path: /svc/Method\r\ncontent-type: application/grpc\r\n\r\n"
            "grpc-message #1 compressed=0 length=3\nabc\ngrpc-message #2 compressed=0 length=2\nhi\n");
}

TEST(Http2Test, BadHpackFallsBackToRaw) {
  std::string wire = kPrefaceStr + frame(0x1, 0x5, 1, std::string("\xff\xff\xff\xff", 4));
  auto ms = run({wire, "more"});
  ASSERT_FALSE(ms.empty());
  std::string raw;
  for (const auto& m : ms) {
    EXPECT_EQ(m.proto, Protocol::kRaw);
    raw += m.event.payload;
  }
  EXPECT_EQ(raw, frame(0x1, 0x5, 1, std::string("\xff\xff\xff\xff", 4)) + "more");
}

// ---- robustness --------------------------------------------------------------------------------

TEST(ParserRobustnessTest, GarbageNeverCrashesAndComesOutRaw) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; ++round) {
    std::string data(rng() % 600, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    // Start some rounds like a protocol to get deeper into the parsers.
    static const char* kStarts[] = {"", "GET / HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\n",
                                    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"};
    data = kStarts[round % 5] + data;
    Chunks chunks;
    for (size_t i = 0; i < data.size();) {
      size_t n = 1 + rng() % 64;
      chunks.push_back(data.substr(i, n));
      i += n;
    }
    auto ms = run(chunks);
    if (round % 5 == 0 && !data.empty() && sniff(data, false) == Sniff::kOther) {
      std::string raw;
      for (const auto& m : ms) raw += m.event.payload;
      EXPECT_EQ(raw, data) << "round " << round;
    }
  }
}

TEST(DecompressTest, RejectsOversizeAndUnknown) {
  std::string big(100000, 'a');
  EXPECT_FALSE(decode_content("gzip", gzip(big), 1000).has_value());
  EXPECT_EQ(decode_content("gzip", gzip(big), 200000).value(), big);
  EXPECT_FALSE(decode_content("compress", "x", 100).has_value());
  EXPECT_EQ(decode_content("identity", "x", 100).value(), "x");
}

}  // namespace
}  // namespace ecapture
