// Rows of the web view: HTTP requests paired with their responses (per connection, and per
// stream for HTTP/2), other TLS messages, shell commands and SQL statements; plus the bounded
// history of the last rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "events/audit_event.h"
#include "events/conn_key.h"
#include "events/message.h"

namespace ecapture::web {

enum class RowKind : uint8_t { kHttp, kTls, kShell, kSql };
const char* row_kind_name(RowKind k);  // "http", "tls", "shell", "sql"

struct Row {
  uint64_t id = 0;
  RowKind kind = RowKind::kTls;
  std::optional<Message> request;   // kHttp (either may be missing: capture started mid-way)
  std::optional<Message> response;  // kHttp
  std::optional<Message> message;   // kTls
  std::optional<AuditEvent> audit;  // kShell, kSql
  size_t bytes = 0;                 // payload bytes held, for the history's byte bound

  // The message that names the process and the connection (request first).
  const Message* first() const;
  uint64_t timestamp_ns() const;
};

// An HTTP/1 head and body, or HTTP/2's rendered header lines and body, of a parsed message.
struct HttpParts {
  std::string_view head;  // start line + headers, without the blank line ("" when none)
  std::string_view body;  // decoded body as captured (may be cut by -t or a lost chunk)
};
HttpParts split_http(const Message& m);
// Case-insensitive header lookup; nullptr when absent.
const std::string* find_header(const HeaderList& headers, std::string_view name);

// Pairs HTTP messages into exchanges. Not thread-safe: one owner feeds it.
class ExchangePairer {
 public:
  struct Limits {
    size_t max_connections = 4096;  // connections with unanswered requests
    size_t max_pending = 256;       // unanswered requests per connection
  };
  ExchangePairer() = default;
  explicit ExchangePairer(Limits limits) : limits_(limits) {}

  // For a request: a new row. For a response: the row of its request when one is pending
  // (completed), else a new row with the response alone. `next_id` numbers new rows.
  struct Result {
    std::shared_ptr<Row> row;
    bool created = false;
    bool completed = false;  // the row now holds a request and its response
  };
  Result add(const Message& m, uint64_t next_id);
  // Rows whose request still waits for a response (oldest first), and forgets them.
  std::deque<std::shared_ptr<Row>> take_pending();
  size_t pending() const;

 private:
  struct Pending {
    uint64_t order = 0;  // of the connection's first entry, for eviction
    std::deque<std::shared_ptr<Row>> rows;
  };
  void evict_oldest();

  Limits limits_;
  uint64_t order_ = 0;
  std::unordered_map<ConnKey, Pending, ConnKeyHash> pending_;
};

// The last rows, bounded in count and in payload bytes.
class RowHistory {
 public:
  RowHistory(size_t max_rows, size_t max_bytes) : max_rows_(max_rows), max_bytes_(max_bytes) {}
  void push(std::shared_ptr<Row> row);
  // A row grew (its response arrived): account for the bytes.
  void grew(size_t bytes);
  std::shared_ptr<Row> find(uint64_t id) const;
  const std::deque<std::shared_ptr<Row>>& rows() const { return rows_; }
  size_t bytes() const { return bytes_; }
  void clear();

 private:
  void trim();
  size_t max_rows_, max_bytes_;
  size_t bytes_ = 0;
  std::deque<std::shared_ptr<Row>> rows_;  // ids ascending, not necessarily contiguous
};

// A row for a finished non-HTTP message or an audit record.
std::shared_ptr<Row> make_message_row(const Message& m, uint64_t id);
std::shared_ptr<Row> make_audit_row(const AuditEvent& e, uint64_t id);

}  // namespace ecapture::web
