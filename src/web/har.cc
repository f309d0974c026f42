// HAR 1.2 entries from rows.
#include "web/har.h"

#include <fmt/format.h>

#include <ctime>

#include "core/version.h"
#include "output/encoders.h"

namespace ecapture::web {
namespace {

nlohmann::json har_headers(const HeaderList& headers) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [k, v] : headers) {
    if (!k.empty() && k[0] == ':') continue;  // HTTP/2 pseudo-headers are in url/status
    out.push_back({{"name", k}, {"value", v}});
  }
  return out;
}

std::string http_version(const Message& m) {
  return m.http.version.empty() ? std::string(protocol_name(m.proto)) : m.http.version;
}

// Bytes of the head on the wire (HTTP/1 only: its head is rendered as received).
long long headers_size(const Message& m, const HttpParts& parts) {
  if (m.proto != Protocol::kHttp1Request && m.proto != Protocol::kHttp1Response) return -1;
  if (parts.head.empty()) return -1;
  return static_cast<long long>(parts.head.size() + 4);
}

// Body bytes as transferred: for HTTP/1 the wire bytes after the head (chunk framing included),
// otherwise the body itself when it was not compressed.
long long body_size(const Message& m, const HttpParts& parts) {
  long long head = headers_size(m, parts);
  if (head >= 0 && m.wire_bytes >= static_cast<uint64_t>(head)) {
    return static_cast<long long>(m.wire_bytes) - head;
  }
  if (m.http.content_encoding.empty()) return static_cast<long long>(parts.body.size());
  return -1;
}

std::string mime_of(const Message& m) {
  const std::string* ct = find_header(m.http.headers, "content-type");
  return ct != nullptr ? *ct : std::string();
}

std::string status_text(const Message& m) {
  // HTTP/1: the reason phrase of the status line; HTTP/2 has none.
  if (m.proto != Protocol::kHttp1Response) return "";
  std::string_view p = m.event.payload;
  size_t eol = p.find("\r\n");
  std::string_view line = p.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return "";
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return "";
  return std::string(line.substr(sp2 + 1));
}

nlohmann::json query_string(const std::string& path) {
  nlohmann::json out = nlohmann::json::array();
  size_t q = path.find('?');
  if (q == std::string::npos) return out;
  std::string_view rest = std::string_view(path).substr(q + 1);
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name.empty()) out.push_back({{"name", name}, {"value", value}});
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

nlohmann::json har_request(const Message& m) {
  HttpParts parts = split_http(m);
  nlohmann::json r;
  r["method"] = m.http.method;
  r["url"] = request_url(m);
  r["httpVersion"] = http_version(m);
  r["cookies"] = nlohmann::json::array();
  r["headers"] = har_headers(m.http.headers);
  r["queryString"] = query_string(m.http.path);
  if (!parts.body.empty()) {
    nlohmann::json post{{"mimeType", mime_of(m)}};
    if (is_utf8_text(parts.body)) {
      post["text"] = std::string(parts.body);
    } else {
      post["text"] = base64_encode(parts.body);
      post["_encoding"] = "base64";  // postData has no encoding field in HAR 1.2
    }
    r["postData"] = post;
  }
  r["headersSize"] = headers_size(m, parts);
  r["bodySize"] = body_size(m, parts);
  return r;
}

nlohmann::json har_response(const Message* m) {
  nlohmann::json r;
  if (m == nullptr) {
    // No response was captured (yet): HAR's convention for an aborted request.
    r = {{"status", 0},         {"statusText", ""},   {"httpVersion", ""},
         {"cookies", nlohmann::json::array()}, {"headers", nlohmann::json::array()},
         {"content", {{"size", 0}, {"mimeType", ""}}}, {"redirectURL", ""},
         {"headersSize", -1},   {"bodySize", -1}};
    return r;
  }
  HttpParts parts = split_http(*m);
  r["status"] = m->http.status;
  r["statusText"] = status_text(*m);
  r["httpVersion"] = http_version(*m);
  r["cookies"] = nlohmann::json::array();
  r["headers"] = har_headers(m->http.headers);
  nlohmann::json content;
  content["size"] = parts.body.size();
  content["mimeType"] = mime_of(*m);
  long long body = body_size(*m, parts);
  if (!m->http.content_encoding.empty() && body >= 0 &&
      static_cast<long long>(parts.body.size()) > body) {
    content["compression"] = static_cast<long long>(parts.body.size()) - body;
  }
  if (is_utf8_text(parts.body)) {
    content["text"] = std::string(parts.body);
  } else {
    content["text"] = base64_encode(parts.body);
    content["encoding"] = "base64";
  }
  r["content"] = content;
  const std::string* location = find_header(m->http.headers, "location");
  r["redirectURL"] = location != nullptr ? *location : "";
  r["headersSize"] = headers_size(*m, parts);
  r["bodySize"] = body;
  if (m->http.partial) r["_partial"] = true;
  return r;
}

}  // namespace

std::string iso8601_ms(uint64_t wall_ns) {
  time_t secs = static_cast<time_t>(wall_ns / 1000000000ull);
  unsigned ms = static_cast<unsigned>((wall_ns / 1000000ull) % 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string request_url(const Message& m) {
  std::string scheme = "https";
  if (const std::string* s = find_header(m.http.headers, ":scheme")) scheme = *s;
  std::string host = m.http.authority;
  if (host.empty()) host = m.event.dst.to_string();  // the request goes to the server: dst
  std::string path = m.http.path.empty() ? "/" : m.http.path;
  return fmt::format("{}://{}{}", scheme, host, path);
}

nlohmann::json har_entry(const Row& row) {
  if (row.kind != RowKind::kHttp || !row.request) return nullptr;
  const Message& req = *row.request;
  const Message* resp = row.response ? &*row.response : nullptr;
  double ms = 0;
  if (resp != nullptr && resp->event.timestamp_ns >= req.event.timestamp_ns) {
    ms = static_cast<double>(resp->event.timestamp_ns - req.event.timestamp_ns) / 1e6;
  }
  nlohmann::json e;
  e["startedDateTime"] = iso8601_ms(req.event.timestamp_ns);
  e["time"] = ms;
  e["request"] = har_request(req);
  e["response"] = har_response(resp);
  e["cache"] = nlohmann::json::object();
  e["timings"] = {{"send", 0}, {"wait", ms}, {"receive", 0}};
  // The server end: dst of the request.
  const Endpoint& server = req.event.dst;
  if (server.known()) {
    std::string addr = server.to_string();
    size_t colon = addr.rfind(':');
    std::string ip = addr.substr(0, colon);
    if (ip.size() > 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
    e["serverIPAddress"] = ip;
  }
  e["connection"] = fmt::format("{}", req.event.conn_id != 0 ? req.event.conn_id
                                                             : static_cast<uint64_t>(req.event.fd));
  // Custom fields (HAR allows "_"-prefixed ones): what no browser can tell.
  e["_pid"] = req.event.pid;
  e["_tid"] = req.event.tid;
  e["_uid"] = req.event.uid;
  e["_comm"] = req.event.comm;
  e["_module"] = req.event.source;
  e["_src"] = req.event.src.to_string();
  e["_dst"] = req.event.dst.to_string();
  if (req.stream_id != 0) e["_stream"] = req.stream_id;
  return e;
}

std::string har_header() {
  nlohmann::json creator{{"name", "ecapture"}, {"version", std::string(kVersion)}};
  return fmt::format("{{\"log\":{{\"version\":\"1.2\",\"creator\":{},\"pages\":[],\"entries\":[",
                     creator.dump());
}

std::string har_footer() { return "]}}\n"; }

nlohmann::json har_document(const std::vector<std::shared_ptr<Row>>& rows) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json e = har_entry(*row);
    if (!e.is_null()) entries.push_back(std::move(e));
  }
  nlohmann::json log;
  log["version"] = "1.2";
  log["creator"] = {{"name", "ecapture"}, {"version", std::string(kVersion)}};
  log["pages"] = nlohmann::json::array();
  log["entries"] = std::move(entries);
  return nlohmann::json{{"log", std::move(log)}};
}

}  // namespace ecapture::web
