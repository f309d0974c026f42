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

void put_cgroup(nlohmann::json& j, const CgroupInfo* cg) {
  j["cgroup"] = cg != nullptr ? cg->path : "";
  j["cgroup_id"] = cg != nullptr ? cg->id : 0;
  j["container_id"] = cg != nullptr ? cg->container_id : "";
  j["container_runtime"] = cg != nullptr ? cg->container_runtime : "";
}

void put_cgroup(event::Event* ev, const CgroupInfo* cg) {
  if (cg == nullptr) return;
  ev->set_cgroup(cg->path);
  ev->set_cgroup_id(cg->id);
  ev->set_container_id(cg->container_id);
  ev->set_container_runtime(cg->container_runtime);
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

namespace {

// A JSON object written straight into one string, for the per-message hot path. Keys must come
// in the order nlohmann::json (a std::map) would print them, so that the output is byte for byte
// what the nlohmann encoding gave.
class JsonLine {
 public:
  explicit JsonLine(size_t reserve) { out_.reserve(reserve); }
  void key(std::string_view k) {
    out_ += first_ ? '{' : ',';
    first_ = false;
    out_ += '"';
    out_.append(k);
    out_ += "\":";
  }
  void num(std::string_view k, uint64_t v) {
    key(k);
    fmt::format_to(std::back_inserter(out_), "{}", v);
  }
  void snum(std::string_view k, int64_t v) {
    key(k);
    fmt::format_to(std::back_inserter(out_), "{}", v);
  }
  void boolean(std::string_view k, bool v) {
    key(k);
    out_ += v ? "true" : "false";
  }
  void raw(std::string_view k, std::string_view json) {
    key(k);
    out_.append(json);
  }
  // A string value: escaped here when it is valid UTF-8 (checked by `utf8_known` or found to
  // be ASCII), else through nlohmann (which replaces invalid sequences).
  void str(std::string_view k, std::string_view v, bool utf8_known = false) {
    key(k);
    if (!utf8_known) {
      for (char c : v) {
        if (static_cast<unsigned char>(c) >= 0x80) {
          out_ += nlohmann::json(std::string(v))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          return;
        }
      }
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    size_t run = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      auto c = static_cast<unsigned char>(v[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(v.substr(run, i - run));
      run = i + 1;
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\b': out_ += "\\b"; break;
        case '\f': out_ += "\\f"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        default:
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xf];
      }
    }
    out_.append(v.substr(run));
    out_ += '"';
  }
  std::string finish() {
    out_ += first_ ? "{}\n" : "}\n";
    return std::move(out_);
  }

 private:
  std::string out_;
  bool first_ = true;
};

std::string http_json(const Message& m) {
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
  return h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string encode_message_json(const Message& m) {
  const DataEvent& e = m.event;
  const bool text = is_utf8_text(e.payload);
  JsonLine j(e.payload.size() * (text ? 1 : 4) / (text ? 1 : 3) + 512);
  const bool comm_text = is_utf8_text(e.comm);
  const CgroupInfo* cg = e.cgroup.get();
  j.str("cgroup", cg != nullptr ? cg->path : "");
  j.num("cgroup_id", cg != nullptr ? cg->id : 0);
  j.str("comm", comm_text ? e.comm : base64_encode(e.comm), comm_text);
  j.num("conn_id", e.conn_id);
  j.str("container_id", cg != nullptr ? cg->container_id : "");
  j.str("container_runtime", cg != nullptr ? cg->container_runtime : "");
  j.str("direction", to_string(e.direction));
  j.str("dst_ip", ip_of(e.dst));
  j.num("dst_port", e.dst.port);
  j.snum("fd", e.fd);
  j.str("host", host_id());
  if (m.proto != Protocol::kRaw) j.raw("http", http_json(m));
  j.num("length", e.length);
  if (text) {
    j.str("payload", e.payload, true);
    j.str("payload_encoding", "text");
  } else {
    j.str("payload", base64_encode(e.payload), true);
    j.str("payload_encoding", "base64");
  }
  j.num("pid", e.pid);
  j.str("proto", protocol_name(m.proto));
  j.str("source", e.source);
  j.str("src_ip", ip_of(e.src));
  j.num("src_port", e.src.port);
  j.num("tid", e.tid);
  j.str("time", format_timestamp(e.timestamp_ns));
  j.num("timestamp", e.timestamp_ns);
  j.boolean("truncated", e.payload.size() < e.length);
  j.snum("type", static_cast<int>(m.proto));
  j.num("uid", e.uid);
  j.str("uuid", message_uuid(m));
  j.num("wire_length", m.wire_bytes);
  return j.finish();
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
  put_cgroup(j, e.cgroup.get());
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
  put_cgroup(ev, e.cgroup.get());
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
  put_cgroup(ev, e.cgroup.get());
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
