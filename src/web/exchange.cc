// Exchange pairing and the row history of the web view.
#include "web/exchange.h"

#include <algorithm>
#include <strings.h>

namespace ecapture::web {

const char* row_kind_name(RowKind k) {
  switch (k) {
    case RowKind::kHttp: return "http";
    case RowKind::kTls: return "tls";
    case RowKind::kShell: return "shell";
    case RowKind::kSql: return "sql";
  }
  return "tls";
}

const Message* Row::first() const {
  if (request) return &*request;
  if (response) return &*response;
  if (message) return &*message;
  return nullptr;
}

uint64_t Row::timestamp_ns() const {
  if (audit) return audit->timestamp_ns;
  const Message* m = first();
  return m != nullptr ? m->event.timestamp_ns : 0;
}

HttpParts split_http(const Message& m) {
  std::string_view p = m.event.payload;
  if (m.proto == Protocol::kRaw) return {{}, p};
  size_t end = p.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    // HTTP/2 DATA after headers that went out earlier: all body. HTTP/1: a head cut by -t.
    if (m.proto == Protocol::kHttp2Request || m.proto == Protocol::kHttp2Response) return {{}, p};
    return {p, {}};
  }
  return {p.substr(0, end), p.substr(end + 4)};
}

const std::string* find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return &v;
  }
  return nullptr;
}

static size_t message_bytes(const Message& m) { return m.event.payload.size() + 256; }

ExchangePairer::Result ExchangePairer::add(const Message& m, uint64_t next_id) {
  Result r;
  ConnKey key = conn_key_of(m.event);
  const bool http2 = m.proto == Protocol::kHttp2Request || m.proto == Protocol::kHttp2Response;
  if (is_request(m.proto)) {
    auto row = std::make_shared<Row>();
    row->id = next_id;
    row->kind = RowKind::kHttp;
    row->request = m;
    row->bytes = message_bytes(m);
    auto [it, fresh] = pending_.try_emplace(key);
    if (fresh) {
      it->second.order = ++order_;
      if (pending_.size() > limits_.max_connections) evict_oldest();
    }
    auto found = pending_.find(key);
    if (found != pending_.end()) {
      auto& q = found->second.rows;
      if (q.size() >= limits_.max_pending) q.pop_front();
      q.push_back(row);
    }
    r.row = row;
    r.created = true;
    return r;
  }
  // A response: 1xx (but 101) is interim, the final one follows on the same request.
  const bool interim = m.http.status >= 100 && m.http.status < 200 && m.http.status != 101;
  auto it = pending_.find(key);
  if (it != pending_.end()) {
    auto& q = it->second.rows;
    auto match = q.begin();
    if (http2) {
      match = std::find_if(q.begin(), q.end(),
                           [&](const auto& row) { return row->request->stream_id == m.stream_id; });
    }
    if (match != q.end()) {
      std::shared_ptr<Row> row = *match;
      if (!interim) {
        q.erase(match);
        if (q.empty()) pending_.erase(it);
        row->response = m;
        row->bytes += message_bytes(m);
        r.completed = true;
      }
      r.row = row;
      return r;
    }
  }
  auto row = std::make_shared<Row>();
  row->id = next_id;
  row->kind = RowKind::kHttp;
  row->response = m;
  row->bytes = message_bytes(m);
  r.row = row;
  r.created = true;
  return r;
}

void ExchangePairer::evict_oldest() {
  auto oldest = pending_.end();
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (oldest == pending_.end() || it->second.order < oldest->second.order) oldest = it;
  }
  if (oldest != pending_.end()) pending_.erase(oldest);
}

std::deque<std::shared_ptr<Row>> ExchangePairer::take_pending() {
  std::deque<std::shared_ptr<Row>> out;
  for (auto& [key, p] : pending_) {
    for (auto& row : p.rows) out.push_back(std::move(row));
  }
  pending_.clear();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
  return out;
}

size_t ExchangePairer::pending() const {
  size_t n = 0;
  for (const auto& [key, p] : pending_) n += p.rows.size();
  return n;
}

void RowHistory::push(std::shared_ptr<Row> row) {
  bytes_ += row->bytes;
  rows_.push_back(std::move(row));
  trim();
}

void RowHistory::grew(size_t bytes) {
  bytes_ += bytes;
  trim();
}

void RowHistory::trim() {
  while (!rows_.empty() && (rows_.size() > max_rows_ || bytes_ > max_bytes_)) {
    bytes_ -= std::min(bytes_, rows_.front()->bytes);
    rows_.pop_front();
  }
}

std::shared_ptr<Row> RowHistory::find(uint64_t id) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), id,
                             [](const auto& row, uint64_t v) { return row->id < v; });
  if (it == rows_.end() || (*it)->id != id) return nullptr;
  return *it;
}

void RowHistory::clear() {
  rows_.clear();
  bytes_ = 0;
}

std::shared_ptr<Row> make_message_row(const Message& m, uint64_t id) {
  auto row = std::make_shared<Row>();
  row->id = id;
  row->kind = RowKind::kTls;
  row->message = m;
  row->bytes = message_bytes(m);
  return row;
}

std::shared_ptr<Row> make_audit_row(const AuditEvent& e, uint64_t id) {
  auto row = std::make_shared<Row>();
  row->id = id;
  row->kind = (e.kind == "BASH" || e.kind == "ZSH") ? RowKind::kShell : RowKind::kSql;
  row->audit = e;
  row->bytes = e.text.size() + 256;
  return row;
}

}  // namespace ecapture::web
