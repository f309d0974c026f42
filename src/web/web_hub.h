// WebHub: the one tap of the web view and --har on the event pipeline. A MessageSink that sits
// beside the OutputRouter: it pairs HTTP exchanges, keeps the last N rows for the page, feeds
// live clients through bounded queues (a slow page never slows capture; drops counted) and
// appends finished exchanges to the --har file.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "events/event_processor.h"
#include "web/exchange.h"
#include "web/har_file.h"

namespace ecapture::web {

struct WebOptions {
  size_t history_rows = 10000;           // --web-history
  size_t history_bytes = 128u << 20;     // payload bytes the history may hold
  size_t client_queue_bytes = 16u << 20;  // per live client
  size_t max_clients = 4;                // live streams at once (each holds a server thread)
};

// One live page: rows it has not been sent yet.
class StreamClient {
 public:
  explicit StreamClient(size_t max_bytes) : max_bytes_(max_bytes) {}
  // Waits up to `timeout` for queued rows; returns them (empty on timeout or close).
  std::vector<std::string> take(std::chrono::milliseconds timeout);
  void push(std::string line);  // drops (and counts) when the queue is full
  void close();
  bool closed() const;
  uint64_t dropped() const { return dropped_.load(); }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  size_t bytes_ = 0;
  size_t max_bytes_;
  bool closed_ = false;
  std::atomic<uint64_t> dropped_{0};
};

class WebHub : public MessageSink {
 public:
  WebHub(WebOptions options, std::unique_ptr<HarFile> har);
  ~WebHub() override;

  // MessageSink (the processor's thread).
  void write(const Message& m) override;
  void write_audit(const AuditEvent& e) override;

  // A new live client, with the summaries of the rows in the history so far; nullptr when
  // max_clients are connected.
  std::shared_ptr<StreamClient> subscribe(std::vector<std::string>& snapshot);
  void unsubscribe(const std::shared_ptr<StreamClient>& c);
  // Ends every live stream (server shutdown).
  void stop_streams();

  // The detail of one row (headers, bodies, process), or null when it left the history.
  nlohmann::json row_detail(uint64_t id) const;
  // HAR 1.2 of the given rows (those still in the history and with a request).
  nlohmann::json export_har(const std::vector<uint64_t>& ids) const;
  // The messages of the given rows as JSON lines (the --format json encoding).
  std::string export_jsonl(const std::vector<uint64_t>& ids) const;
  nlohmann::json stats() const;
  size_t history_rows() const { return options_.history_rows; }
  // The --har file's path, nullptr without --har.
  const std::string* har_path() const { return har_ ? &har_->path() : nullptr; }

  // End of the run: requests still unanswered go to the --har file too; `commit` writes it
  // (false: the run never started, nothing is left behind). Returns the HAR error, if any.
  Result<void> close(bool commit);

  // The summary one row shows in the list (also what live clients receive).
  static nlohmann::json row_summary(const Row& row);

 private:
  struct ProcInfo {
    std::string cmdline, exe;
  };
  void publish(const Row& row);
  void note_process(uint32_t pid);
  std::vector<std::shared_ptr<Row>> collect(const std::vector<uint64_t>& ids) const;

  const WebOptions options_;
  mutable std::mutex mu_;
  ExchangePairer pairer_;
  RowHistory history_;
  uint64_t next_id_ = 1;
  uint64_t rows_total_ = 0;
  std::list<std::shared_ptr<StreamClient>> clients_;
  std::unique_ptr<HarFile> har_;
  bool closed_ = false;
  std::unordered_map<uint32_t, ProcInfo> procs_;  // bounded: cleared when it grows past 4096
};

}  // namespace ecapture::web
