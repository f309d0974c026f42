// Text, JSON and protobuf encoding of messages.
#include "output/encoders.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/host_id.h"
#include "ecaptureq.pb.h"
#include "output/audit_text.h"
#include "output/text_encoder.h"

namespace ecapture {
namespace {

std::string ip_of(const Endpoint& ep) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ep.family == AF_INET) return ::inet_ntop(AF_INET, ep.addr.data(), buf, sizeof(buf));
  if (ep.family == AF_INET6) return ::inet_ntop(AF_INET6, ep.addr.data(), buf, sizeof(buf));
  return "";
}

void put_payload(nlohmann::json& j, std::string_view payload) {
  if (is_utf8_text(payload)) {
    j["payload"] = std::string(payload);
    j["payload_encoding"] = "text";
  } else {
    j["payload"] = base64_encode(payload);
    j["payload_encoding"] = "base64";
  }
}

}  // namespace

Result<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  if (name == "protobuf" || name == "pb") return Format::kProtobuf;
  return make_error("--format {}: unknown format (use text, json or protobuf)", name);
}

const char* format_name(Format f) {
  switch (f) {
    case Format::kText: return "text";
    case Format::kJson: return "json";
    case Format::kProtobuf: return "protobuf";
  }
  return "?";
}

bool is_utf8_text(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t extra = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
    if (extra == 0 || i + extra >= s.size()) return false;
    if (c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    uint32_t cp = c & (0x3f >> extra);
    for (size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

std::string base64_encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(data[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(data[i + 1])} << 8) |
                 static_cast<uint8_t>(data[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(data[i])} << 16;
    if (i + 1 < data.size()) v |= uint32_t{static_cast<uint8_t>(data[i + 1])} << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string encode_message_text(const Message& m, bool hex) {
  std::string block = encode_text(m.event, TextOptions{hex, 0});
  if (m.proto == Protocol::kRaw) return block;
  std::string tag = fmt::format(" proto={}", protocol_name(m.proto));
  if (m.stream_id != 0) fmt::format_to(std::back_inserter(tag), " stream={}", m.stream_id);
  if (m.http.partial) tag += " partial";
  block.insert(block.find('\n'), tag);
  return block;
}

std::string encode_message_json(const Message& m) {
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
  put_payload(j, e.payload);
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
    for (const auto& [k, v] : m.http.headers) {
      headers.push_back({is_utf8_text(k) ? k : base64_encode(k),
                         is_utf8_text(v) ? v : base64_encode(v)});
    }
    h["headers"] = std::move(headers);
    h["content_encoding"] = m.http.content_encoding;
    h["body_decoded"] = m.http.body_decoded;
    h["partial"] = m.http.partial;
    j["http"] = std::move(h);
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string encode_audit_json(const AuditEvent& e) {
  nlohmann::json j;
  j["time"] = format_timestamp(e.timestamp_ns);
  j["timestamp"] = e.timestamp_ns;
  j["host"] = host_id();
  j["source"] = audit_module(e);
  j["kind"] = e.kind;
  j["type"] = e.type;
  j["pid"] = e.pid;
  j["tid"] = e.tid;
  j["uid"] = e.uid;
  j["comm"] = e.comm;
  j["status"] = e.status == AuditEvent::kStatusUnknown ? nlohmann::json() : nlohmann::json(e.status);
  j["duration_ns"] =
      e.duration_ns == AuditEvent::kDurationUnknown ? nlohmann::json() : nlohmann::json(e.duration_ns);
  j["length"] = std::max<uint64_t>(e.text_length, e.text.size());
  put_payload(j, e.text);
  nlohmann::json attrs = nlohmann::json::object();
  for (const auto& [k, v] : e.attrs) attrs[k] = v;
  j["attrs"] = std::move(attrs);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string encode_message_protobuf(const Message& m) {
  const DataEvent& e = m.event;
  event::LogEntry entry;
  entry.set_log_type(event::LOG_TYPE_EVENT);
  entry.set_host(host_id());
  entry.set_module(e.source);
  event::Event* ev = entry.mutable_event_payload();
  ev->set_timestamp(static_cast<int64_t>(e.timestamp_ns));
  ev->set_uuid(message_uuid(m));
  ev->set_src_ip(ip_of(e.src));
  ev->set_src_port(e.src.port);
  ev->set_dst_ip(ip_of(e.dst));
  ev->set_dst_port(e.dst.port);
  ev->set_pid(e.pid);
  ev->set_pname(e.comm);
  ev->set_type(static_cast<uint32_t>(m.proto));
  ev->set_length(static_cast<uint32_t>(e.payload.size()));
  ev->set_payload(e.payload);
  return entry.SerializeAsString();
}

std::string audit_module(const AuditEvent& e) {
  if (!e.source.empty()) return e.source;
  std::string m = e.kind;  // "MYSQLD" → "mysqld"
  for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return m;
}

std::string encode_audit_protobuf(const AuditEvent& e) {
  event::LogEntry entry;
  entry.set_log_type(event::LOG_TYPE_EVENT);
  entry.set_host(host_id());
  entry.set_module(audit_module(e));
  event::Event* ev = entry.mutable_event_payload();
  ev->set_timestamp(static_cast<int64_t>(e.timestamp_ns));
  ev->set_uuid(fmt::format("{}_{}_{}_{}", e.pid, e.tid, e.comm, e.kind));
  ev->set_pid(e.pid);
  ev->set_pname(e.comm);
  ev->set_type(0);
  ev->set_length(static_cast<uint32_t>(e.text.size()));
  ev->set_payload(e.text);
  return entry.SerializeAsString();
}

std::string encode_log_protobuf(std::string_view line) {
  event::LogEntry entry;
  entry.set_log_type(event::LOG_TYPE_PROCESS_LOG);
  entry.set_run_log(std::string(line));
  return entry.SerializeAsString();
}

std::string encode_heartbeat_protobuf(int64_t unix_seconds, int64_t count) {
  event::LogEntry entry;
  entry.set_log_type(event::LOG_TYPE_HEARTBEAT);
  auto* hb = entry.mutable_heartbeat_payload();
  hb->set_timestamp(unix_seconds);
  hb->set_count(count);
  hb->set_message(fmt::format("heartbeat:{}", count));
  return entry.SerializeAsString();
}

std::string length_delimited(std::string_view message) {
  std::string out;
  uint64_t n = message.size();
  while (n >= 0x80) {
    out += static_cast<char>((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out += static_cast<char>(n);
  out.append(message);
  return out;
}

}  // namespace ecapture
