// The web view's rows, live clients and --har feed.
#include "web/web_hub.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "output/encoders.h"
#include "web/har.h"

namespace ecapture::web {
namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string read_small_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string s;
  s.resize(4096);
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

nlohmann::json message_detail(const Message& m) {
  HttpParts parts = split_http(m);
  nlohmann::json j;
  j["time_ns"] = m.event.timestamp_ns;
  j["direction"] = to_string(m.event.direction);
  j["proto"] = protocol_name(m.proto);
  j["length"] = m.event.length;
  j["wire_bytes"] = m.wire_bytes;
  j["partial"] = m.http.partial;
  if (m.proto != Protocol::kRaw) {
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [k, v] : m.http.headers) headers.push_back({k, v});
    j["headers"] = std::move(headers);
    std::string_view head = parts.head;
    j["start_line"] = std::string(head.substr(0, head.find("\r\n")));
    j["content_encoding"] = m.http.content_encoding;
    const std::string* ct = find_header(m.http.headers, "content-type");
    j["content_type"] = ct != nullptr ? *ct : "";
    if (m.stream_id != 0) j["stream"] = m.stream_id;
  }
  // Bodies travel as base64: the page decides how to show them (text, JSON, image, hex) and
  // never inserts them as HTML.
  j["body_b64"] = base64_encode(parts.body);
  j["body_size"] = parts.body.size();
  j["truncated"] = m.event.payload.size() < m.event.length;
  return j;
}

// The row's container column (its short id) and the process's cgroup path.
void put_container(nlohmann::json& j, const CgroupInfo* cg) {
  if (cg == nullptr) return;
  if (!cg->container_id.empty()) j["container"] = short_container_id(cg->container_id);
  j["cgroup"] = cg->path;
}

}  // namespace

std::vector<std::string> StreamClient::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !q_.empty(); });
  std::vector<std::string> out(std::make_move_iterator(q_.begin()),
                               std::make_move_iterator(q_.end()));
  q_.clear();
  bytes_ = 0;
  return out;
}

void StreamClient::push(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (bytes_ + line.size() > max_bytes_) {
      dropped_.fetch_add(1);
      return;
    }
    bytes_ += line.size();
    q_.push_back(std::move(line));
  }
  cv_.notify_one();
}

void StreamClient::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool StreamClient::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

WebHub::WebHub(WebOptions options, std::unique_ptr<HarFile> har)
    : options_(options), history_(options.history_rows, options.history_bytes),
      har_(std::move(har)) {}

WebHub::~WebHub() {
  stop_streams();
  (void)close(false);
}

nlohmann::json WebHub::row_summary(const Row& row) {
  nlohmann::json j;
  j["id"] = row.id;
  j["kind"] = row_kind_name(row.kind);
  j["time_ns"] = row.timestamp_ns();
  j["container"] = nullptr;  // no container: the page shows "-"
  if (row.audit) {
    const AuditEvent& e = *row.audit;
    put_container(j, e.cgroup.get());
    j["module"] = e.source;
    j["pid"] = e.pid;
    j["tid"] = e.tid;
    j["comm"] = e.comm;
    j["src"] = "";
    j["dst"] = "";
    j["type"] = e.type;
    j["text"] = e.text.substr(0, 300);
    j["status"] =
        e.status == AuditEvent::kStatusUnknown ? nlohmann::json() : nlohmann::json(e.status);
    j["duration_ns"] = e.duration_ns == AuditEvent::kDurationUnknown
                           ? nlohmann::json()
                           : nlohmann::json(e.duration_ns);
    return j;
  }
  const Message* m = row.first();
  if (m == nullptr) return j;
  put_container(j, m->event.cgroup.get());
  j["module"] = m->event.source;
  j["pid"] = m->event.pid;
  j["tid"] = m->event.tid;
  j["comm"] = m->event.comm;
  j["fd"] = m->event.fd;
  // src → dst of the exchange: client → server (a request's src is always the client).
  const Message& dir = row.request ? *row.request : *m;
  j["src"] = dir.event.src.to_string();
  j["dst"] = dir.event.dst.to_string();
  if (row.kind == RowKind::kTls) {
    j["direction"] = to_string(m->event.direction);
    j["size"] = m->event.length;
    std::string_view p = m->event.payload;
    p = p.substr(0, 200);
    j["text"] = is_utf8_text(p) ? std::string(p) : std::string();
    j["binary"] = !is_utf8_text(p);
    return j;
  }
  j["proto"] = protocol_name(m->proto);
  if (row.request) {
    const Message& q = *row.request;
    j["method"] = q.http.method;
    j["host"] = q.http.authority;
    j["path"] = q.http.path;
    j["req_size"] = split_http(q).body.size();
    if (q.stream_id != 0) j["stream"] = q.stream_id;
  } else {
    j["method"] = "";
    j["host"] = "";
    j["path"] = "";
  }
  if (row.response) {
    const Message& r = *row.response;
    j["status"] = r.http.status;
    j["resp_size"] = split_http(r).body.size();
    j["partial"] = r.http.partial || (row.request && row.request->http.partial);
    const std::string* ct = find_header(r.http.headers, "content-type");
    j["mime"] = ct != nullptr ? *ct : "";
    if (row.request && r.event.timestamp_ns >= row.request->event.timestamp_ns) {
      j["duration_ns"] = r.event.timestamp_ns - row.request->event.timestamp_ns;
    }
  } else {
    j["status"] = nullptr;
  }
  return j;
}

void WebHub::publish(const Row& row) {
  if (clients_.empty()) return;
  std::string line = row_summary(row).dump(-1, ' ', false, kReplace);
  for (const auto& c : clients_) c->push(line);
}

void WebHub::note_process(uint32_t pid) {
  if (procs_.count(pid) != 0) return;
  if (procs_.size() >= 4096) procs_.clear();
  ProcInfo info;
  std::string cmd = read_small_file(fmt::format("/proc/{}/cmdline", pid));
  for (char& c : cmd) {
    if (c == '\0') c = ' ';
  }
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  info.cmdline = std::move(cmd);
  char buf[4096];
  ssize_t n = ::readlink(fmt::format("/proc/{}/exe", pid).c_str(), buf, sizeof(buf) - 1);
  if (n > 0) info.exe.assign(buf, static_cast<size_t>(n));
  procs_.emplace(pid, std::move(info));
}

void WebHub::write(const Message& m) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  note_process(m.event.pid);
  if (m.proto == Protocol::kRaw) {
    auto row = make_message_row(m, next_id_++);
    ++rows_total_;
    history_.push(row);
    publish(*row);
    return;
  }
  ExchangePairer::Result r = pairer_.add(m, next_id_);
  if (r.created) {
    ++next_id_;
    ++rows_total_;
    history_.push(r.row);
  } else if (r.completed) {
    if (history_.find(r.row->id)) history_.grew(m.event.payload.size() + 256);
  }
  if (r.completed && har_) har_->add(*r.row);
  publish(*r.row);
}

void WebHub::write_audit(const AuditEvent& e) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  note_process(e.pid);
  auto row = make_audit_row(e, next_id_++);
  ++rows_total_;
  history_.push(row);
  publish(*row);
}

std::shared_ptr<StreamClient> WebHub::subscribe(std::vector<std::string>& snapshot) {
  std::lock_guard lock(mu_);
  if (clients_.size() >= options_.max_clients) return nullptr;
  snapshot.clear();
  snapshot.reserve(history_.rows().size());
  for (const auto& row : history_.rows()) {
    snapshot.push_back(row_summary(*row).dump(-1, ' ', false, kReplace));
  }
  auto c = std::make_shared<StreamClient>(options_.client_queue_bytes);
  clients_.push_back(c);
  return c;
}

void WebHub::unsubscribe(const std::shared_ptr<StreamClient>& c) {
  std::lock_guard lock(mu_);
  clients_.remove(c);
}

void WebHub::stop_streams() {
  std::lock_guard lock(mu_);
  for (const auto& c : clients_) c->close();
  clients_.clear();
}

nlohmann::json WebHub::row_detail(uint64_t id) const {
  std::lock_guard lock(mu_);
  std::shared_ptr<Row> row = history_.find(id);
  if (!row) return nullptr;
  nlohmann::json j = row_summary(*row);
  uint32_t pid = row->audit ? row->audit->pid : row->first()->event.pid;
  nlohmann::json proc{{"pid", pid}};
  if (row->audit) {
    proc["tid"] = row->audit->tid;
    proc["uid"] = row->audit->uid;
    proc["comm"] = row->audit->comm;
  } else {
    const DataEvent& e = row->first()->event;
    proc["tid"] = e.tid;
    proc["uid"] = e.uid;
    proc["comm"] = e.comm;
    proc["fd"] = e.fd;
    proc["conn_id"] = fmt::format("{:#x}", e.conn_id);
  }
  if (auto it = procs_.find(pid); it != procs_.end()) {
    proc["cmdline"] = it->second.cmdline;
    proc["exe"] = it->second.exe;
  }
  j["process"] = std::move(proc);
  if (row->request) j["request"] = message_detail(*row->request);
  if (row->response) j["response"] = message_detail(*row->response);
  if (row->message) j["message"] = message_detail(*row->message);
  if (row->audit) {
    const AuditEvent& e = *row->audit;
    nlohmann::json a{{"text", e.text}, {"kind", e.kind}, {"uid", e.uid}};
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& [k, v] : e.attrs) attrs[k] = v;
    a["attrs"] = std::move(attrs);
    a["text_length"] = e.text_length != 0 ? e.text_length : e.text.size();
    j["audit"] = std::move(a);
  }
  if (row->request) j["url"] = request_url(*row->request);
  return j;
}

std::vector<std::shared_ptr<Row>> WebHub::collect(const std::vector<uint64_t>& ids) const {
  std::vector<std::shared_ptr<Row>> rows;
  rows.reserve(ids.size());
  for (uint64_t id : ids) {
    if (auto row = history_.find(id)) rows.push_back(std::move(row));
  }
  return rows;
}

nlohmann::json WebHub::export_har(const std::vector<uint64_t>& ids) const {
  std::lock_guard lock(mu_);
  return har_document(collect(ids));
}

std::string WebHub::export_jsonl(const std::vector<uint64_t>& ids) const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& row : collect(ids)) {
    if (row->request) out += encode_message_json(*row->request);
    if (row->response) out += encode_message_json(*row->response);
    if (row->message) out += encode_message_json(*row->message);
    if (row->audit) out += encode_audit_json(*row->audit);
  }
  return out;
}

nlohmann::json WebHub::stats() const {
  std::lock_guard lock(mu_);
  uint64_t dropped = 0;
  for (const auto& c : clients_) dropped += c->dropped();
  return {{"rows_total", rows_total_},
          {"history_rows", history_.rows().size()},
          {"history_bytes", history_.bytes()},
          {"history_limit", options_.history_rows},
          {"pending_requests", pairer_.pending()},
          {"clients", clients_.size()},
          {"client_dropped", dropped},
          {"har_entries", har_ ? har_->entries() : 0}};
}

Result<void> WebHub::close(bool commit) {
  std::lock_guard lock(mu_);
  if (closed_) return {};
  closed_ = true;
  for (const auto& c : clients_) c->close();
  clients_.clear();
  if (!har_) return {};
  if (!commit) {
    har_->discard();
    return {};
  }
  for (const auto& row : pairer_.take_pending()) har_->add(*row);
  return har_->commit();
}

}  // namespace ecapture::web
