// EventProcessor: the EventSink that takes decoded events off the ring-buffer reader thread,
// groups them per connection and direction, reassembles and parses them (HTTP/1, HTTP/2, raw),
// and hands finished messages to a MessageSink (encoders + writers).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "events/audit_event.h"
#include "events/conn_key.h"
#include "events/message.h"
#include "events/parsers/parser.h"
#include "core/sink.h"
#include "events/audit_event.h"
#include "events/event.h"

namespace ecapture {

// Where finished messages go. Called from the processor's thread only.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void write(const Message& m) = 0;
  virtual void write_audit(const AuditEvent& e) = 0;
  virtual void flush() {}
};

struct ProcessorOptions {
  ParserLimits limits;
  bool parse = true;               // false: every call is its own raw message
  uint64_t tsize = 0;              // per message, after reassembly (0: all)
  size_t queue_events = 65536;     // bounded hand-off queue ...
  size_t queue_bytes = 256u << 20;  // ... in events and in payload bytes
  std::chrono::milliseconds idle_flush{500};   // partial messages go out after this quiet time
  std::chrono::milliseconds conn_expiry{300000};  // connection state dropped after this
  size_t max_connections = 4096;
  size_t max_buffered = 512u << 20;  // all connections together
};

struct ProcessorStats {
  uint64_t events = 0;          // accepted into the queue
  uint64_t dropped_events = 0;  // queue full
  uint64_t dropped_bytes = 0;
  uint64_t messages = 0;        // handed to the sink
  uint64_t flushed_idle = 0;    // partial messages emitted by the idle timer or a limit
  uint64_t evicted = 0;         // connections dropped for the connection limit
};

class EventProcessor : public EventSink {
 public:
  EventProcessor(ProcessorOptions options, MessageSink* out);
  ~EventProcessor() override;
  EventProcessor(const EventProcessor&) = delete;
  EventProcessor& operator=(const EventProcessor&) = delete;

  // EventSink: never blocks on parsing or writing; a full queue drops and counts.
  void emit(const DataEvent& event) override;
  void emit_audit(const AuditEvent& event) override;
  // Waits until everything queued so far has been processed and written.
  void flush() override;
  // Drains the queue, emits every buffered message, stops the thread. Idempotent.
  void close();

  void set_tsize(uint64_t tsize) { tsize_.store(tsize); }
  ProcessorStats stats() const;

 private:
  struct Item {
    std::variant<DataEvent, AuditEvent> v;
    bool gap = false;  // events of this connection were dropped before this one
    size_t bytes = 0;
  };
  struct Connection;

  static ConnKey key_of(const DataEvent& e) { return conn_key_of(e); }
  void run();
  void process(Item& item);
  void deliver(Message&& m);
  void sweep(bool all);

  ProcessorOptions options_;
  MessageSink* out_;
  std::atomic<uint64_t> tsize_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // worker wake-up
  std::condition_variable idle_cv_;  // flush() waiters
  std::deque<Item> queue_;
  size_t queue_bytes_ = 0;
  bool busy_ = false;
  bool closing_ = false;
  bool closed_ = false;
  std::unordered_set<ConnKey, ConnKeyHash> gaps_;  // connections that lost events
  ProcessorStats stats_;

  // Worker-thread state.
  std::unordered_map<ConnKey, std::unique_ptr<Connection>, ConnKeyHash> conns_;
  std::atomic<uint64_t> messages_{0}, flushed_idle_{0}, evicted_{0};
  std::thread worker_;
};

}  // namespace ecapture
