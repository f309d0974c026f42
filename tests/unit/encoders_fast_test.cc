// The hand-written JSON and hex encoders against the nlohmann/fmt renderings they replaced: byte
// for byte the same output, for text, binary, escapes, odd comm names and HTTP messages.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "core/host_id.h"
#include <string>

#include "output/encoders.h"
#include "output/text_encoder.h"

namespace ecapture {
namespace {

std::string ip_of(const Endpoint& ep) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ep.family == AF_INET) return ::inet_ntop(AF_INET, ep.addr.data(), buf, sizeof(buf));
  if (ep.family == AF_INET6) return ::inet_ntop(AF_INET6, ep.addr.data(), buf, sizeof(buf));
  return "";
}

// The nlohmann encoding the fast writer replaced.
std::string reference_json(const Message& m) {
  const DataEvent& e = m.event;
  nlohmann::json j;
  j["time"] = format_timestamp(e.timestamp_ns);
  j["timestamp"] = e.timestamp_ns;
  j["uuid"] = message_uuid(m);
  j["host"] = host_id();
  j["source"] = e.source;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["uid"] = e.uid;
  j["comm"] = is_utf8_text(e.comm) ? e.comm : base64_encode(e.comm);
  j["fd"] = e.fd;
  j["conn_id"] = e.conn_id;
  j["cgroup"] = e.cgroup ? e.cgroup->path : "";
  j["cgroup_id"] = e.cgroup ? e.cgroup->id : 0;
  j["container_id"] = e.cgroup ? e.cgroup->container_id : "";
  j["container_runtime"] = e.cgroup ? e.cgroup->container_runtime : "";
  j["direction"] = to_string(e.direction);
  j["src_ip"] = ip_of(e.src);
  j["src_port"] = e.src.port;
  j["dst_ip"] = ip_of(e.dst);
  j["dst_port"] = e.dst.port;
  j["proto"] = protocol_name(m.proto);
  j["type"] = static_cast<int>(m.proto);
  j["length"] = e.length;
  j["wire_length"] = m.wire_bytes;
  j["truncated"] = e.payload.size() < e.length;
  if (is_utf8_text(e.payload)) {
    j["payload"] = e.payload;
    j["payload_encoding"] = "text";
  } else {
    j["payload"] = base64_encode(e.payload);
    j["payload_encoding"] = "base64";
  }
  if (m.proto != Protocol::kRaw) {
    nlohmann::json h;
    h["version"] = m.http.version;
    if (is_request(m.proto)) {
      h["method"] = m.http.method;
      h["path"] = m.http.path;
    } else {
      h["status"] = m.http.status;
    }
    h["authority"] = m.http.authority;
    if (m.stream_id != 0) h["stream_id"] = m.stream_id;
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [k, v] : m.http.headers) headers.push_back({k, v});
    h["headers"] = std::move(headers);
    h["content_encoding"] = m.http.content_encoding;
    h["body_decoded"] = m.http.body_decoded;
    h["partial"] = m.http.partial;
    j["http"] = std::move(h);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Message message(std::string payload, std::string comm) {
  Message m;
  m.event.timestamp_ns = 1700000000123456789ull;
  m.event.pid = 4242;
  m.event.tid = 4243;
  m.event.uid = 1000;
  m.event.comm = std::move(comm);
  m.event.fd = -1;
  m.event.direction = Direction::kWrite;
  m.event.src.family = AF_INET;
  m.event.src.addr = {127, 0, 0, 1};
  m.event.src.port = 40000;
  m.event.dst.family = AF_INET6;
  m.event.dst.addr[15] = 1;
  m.event.dst.port = 443;
  m.event.length = payload.size() + 3;
  m.event.payload = std::move(payload);
  m.event.source = "openssl";
  m.event.conn_id = 0xdeadbeefcafeull;
  m.wire_bytes = 1234;
  return m;
}

TEST(FastJson, SameBytesAsNlohmann) {
  std::string binary;
  for (int i = 0; i < 300; ++i) binary += static_cast<char>(i * 7);
  const std::string payloads[] = {
      "",
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "quote \" backslash \\ tab\t nl\n del\x7f",
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
      binary,
      std::string("nul\0inside", 10),
  };
  const std::string comms[] = {"curl", "we\"ird\\", "caf\xc3\xa9", std::string("\xff\xfe", 2),
                               "tab\tname"};
  for (const auto& p : payloads) {
    for (const auto& c : comms) {
      Message m = message(p, c);
      EXPECT_EQ(encode_message_json(m), reference_json(m)) << "payload size " << p.size();
    }
  }
  Message h = message("HTTP/1.1 200 OK\r\n\r\n", "srv");
  h.proto = Protocol::kHttp1Response;
  h.http.version = "HTTP/1.1";
  h.http.status = 200;
  h.http.headers = {{"Content-Type", "text/plain"}, {"X-Q", "a\"b"}};
  EXPECT_EQ(encode_message_json(h), reference_json(h));
  h.proto = Protocol::kHttp2Request;
  h.stream_id = 3;
  h.http.method = "GET";
  h.http.path = "/p";
  EXPECT_EQ(encode_message_json(h), reference_json(h));
}

// The fmt-per-byte hex dump the table version replaced.
std::string reference_hex(std::string_view data) {
  std::string out;
  for (size_t off = 0; off < data.size(); off += 16) {
    size_t n = std::min<size_t>(16, data.size() - off);
    fmt::format_to(std::back_inserter(out), "{:08x}  ", off);
    for (size_t i = 0; i < 16; ++i) {
      if (i < n) {
        fmt::format_to(std::back_inserter(out), "{:02x} ",
                       static_cast<unsigned char>(data[off + i]));
      } else {
        out += "   ";
      }
      if (i == 7) out += ' ';
    }
    out += " |";
    for (size_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(data[off + i]);
      out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
    }
    out += "|\n";
  }
  return out;
}

TEST(FastHex, SameBytesAsFormatted) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 13 + 5);
  for (size_t n : {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 1000}) {
    std::string_view d(data.data(), n);
    EXPECT_EQ(hex_dump(d), reference_hex(d)) << n;
  }
}

}  // namespace
}  // namespace ecapture
