// Writers: where encoded messages go. stdout and files write synchronously on the processor's
// thread; network writers (tcp://, ws://) queue in memory (bounded) and send from their own
// thread, so a slow or vanished consumer costs dropped messages (counted), never a stall.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/logger.h>

#include "core/result.h"

namespace ecapture {

struct WriterStats {
  uint64_t messages = 0;  // written (or handed to the kernel)
  uint64_t bytes = 0;
  uint64_t dropped = 0;   // messages dropped (queue full, consumer gone)
  uint64_t dropped_bytes = 0;
  uint64_t connects = 0;  // network writers: successful (re)connections
};

// What a keyed transport (Kafka) needs besides the bytes: the message key that keeps one
// connection's messages together and the header values.
struct RecordMeta {
  std::string key;     // "<host>/<pid>/<fd>/<local>/<peer>", see record_key()
  std::string module;  // "openssl", "bash", ...
  uint32_t pid = 0;
};

class Writer {
 public:
  virtual ~Writer() = default;
  // One encoded message. Thread-safe.
  virtual void write(std::string_view bytes, bool binary) = 0;
  // The same with its metadata; writers that have no use for it write the bytes.
  virtual void write_record(const RecordMeta& /*meta*/, std::string_view bytes, bool binary) {
    write(bytes, binary);
  }
  // Writer-specific counters for the exit summary, e.g. " queue_full=2"; "" when none.
  virtual std::string detail() const { return ""; }
  virtual void flush() {}
  // Sends what is queued (network writers: up to a short deadline), then releases everything.
  virtual void close() {}
  // True when the transport keeps message boundaries (WebSocket frames).
  virtual bool framed() const { return false; }
  virtual std::string name() const = 0;
  WriterStats stats() const;

 protected:
  std::atomic<uint64_t> messages_{0}, bytes_{0}, dropped_{0}, dropped_bytes_{0}, connects_{0};
};

struct RotationOptions {
  uint64_t max_bytes = 0;                // 0: no size rotation
  std::chrono::seconds interval{0};      // 0: no time rotation
};

// stdout (or any FILE*), flushed per message.
class StreamWriter : public Writer {
 public:
  explicit StreamWriter(std::FILE* out, std::string name = "stdout")
      : out_(out), name_(std::move(name)) {}
  void write(std::string_view bytes, bool binary) override;
  void flush() override;
  std::string name() const override { return name_; }

 private:
  std::mutex mu_;
  std::FILE* out_;
  std::string name_;
};

// A file, appended to; rotated by size and/or age: the full file is renamed to
// "<stem>-YYYY-MM-DDTHH-MM-SS.mmm<ext>" (eCapture's backup names) and a new one started.
class FileWriter : public Writer {
 public:
  // `log` (may be null) gets one line when writing first fails (a full disk).
  static Result<std::unique_ptr<FileWriter>> open(const std::string& path, RotationOptions rot,
                                                  std::shared_ptr<spdlog::logger> log = nullptr);
  ~FileWriter() override;
  void write(std::string_view bytes, bool binary) override;
  void close() override;
  std::string name() const override { return path_; }
  uint64_t rotations() const { return rotations_.load(); }

 private:
  FileWriter(std::string path, RotationOptions rot, std::shared_ptr<spdlog::logger> log)
      : path_(std::move(path)), rot_(rot), log_(std::move(log)) {}
  Result<void> open_file();
  void rotate();

  std::mutex mu_;
  std::string path_;
  RotationOptions rot_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::chrono::steady_clock::time_point opened_{};
  std::atomic<uint64_t> rotations_{0};
  std::shared_ptr<spdlog::logger> log_;
  bool write_failed_ = false;  // reported once
};

// Base of the network writers: a bounded queue drained by a sender thread that (re)connects.
class QueuedWriter : public Writer {
 public:
  explicit QueuedWriter(size_t max_queue_bytes) : max_queue_bytes_(max_queue_bytes) {}
  void write(std::string_view bytes, bool binary) override;
  void close() override;

 protected:
  struct Item {
    std::string bytes;
    bool binary;
  };
  void start();
  // The sender thread's work, implemented by subclasses. Both return false on a broken link.
  virtual bool connect_link() = 0;
  virtual bool send_item(const Item& item) = 0;
  virtual void drop_link() = 0;
  bool stopping() const { return stop_.load(); }

 private:
  void run();

  size_t max_queue_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  size_t queued_bytes_ = 0;
  std::atomic<bool> stop_{false};
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::thread thread_;
};

// tcp://host:port — a plain byte stream; reconnects every second while the peer is away.
class TcpWriter : public QueuedWriter {
 public:
  static Result<std::unique_ptr<TcpWriter>> create(const std::string& url, size_t max_queue_bytes);
  ~TcpWriter() override;
  std::string name() const override { return url_; }

 protected:
  bool connect_link() override;
  bool send_item(const Item& item) override;
  void drop_link() override;

 private:
  TcpWriter(std::string url, std::string host, std::string port, size_t max_queue_bytes)
      : QueuedWriter(max_queue_bytes), url_(std::move(url)), host_(std::move(host)),
        port_(std::move(port)) {}
  std::string url_, host_, port_;
  int fd_ = -1;
};

// Splits "scheme://host:port/path"; host may be [v6].
struct ParsedUrl {
  std::string scheme, host, port, path;
};
Result<ParsedUrl> parse_url(std::string_view url);

// ws://host:port/path (wss:// is refused: no TLS client here). Defined in ws_client.cc.
Result<std::unique_ptr<Writer>> make_ws_client_writer(const std::string& url,
                                                      size_t max_queue_bytes);

// Chooses the writer for an address: a file path, tcp://host:port or ws://host:port/path.
Result<std::unique_ptr<Writer>> make_writer(const std::string& addr, RotationOptions rot,
                                            std::shared_ptr<spdlog::logger> log);

}  // namespace ecapture
