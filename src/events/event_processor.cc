// The processing thread: per-connection decoders, idle flushing, bounded hand-off.
#include "events/event_processor.h"

#include "events/stream_decoder.h"

namespace ecapture {

struct EventProcessor::Connection {
  ConnShared shared;
  std::unique_ptr<StreamDecoder> dir[2];  // by Direction
  std::chrono::steady_clock::time_point last{};
  bool dirty = false;  // something may be buffered since the last idle flush
};

EventProcessor::EventProcessor(ProcessorOptions options, MessageSink* out)
    : options_(options), out_(out), tsize_(options.tsize) {
  worker_ = std::thread([this] { run(); });
}

EventProcessor::~EventProcessor() { close(); }

void EventProcessor::emit(const DataEvent& event) {
  std::unique_lock lock(mu_);
  if (closed_) return;
  size_t bytes = event.payload.size() + 256;
  if (queue_.size() >= options_.queue_events || queue_bytes_ + bytes > options_.queue_bytes) {
    ++stats_.dropped_events;
    stats_.dropped_bytes += event.payload.size();
    gaps_.insert(key_of(event));
    return;
  }
  Item item{event, false, bytes};
  if (!gaps_.empty()) item.gap = gaps_.erase(key_of(event)) > 0;
  ++stats_.events;
  queue_bytes_ += bytes;
  queue_.push_back(std::move(item));
  lock.unlock();
  cv_.notify_one();
}

void EventProcessor::emit_audit(const AuditEvent& event) {
  std::unique_lock lock(mu_);
  if (closed_) return;
  size_t bytes = event.text.size() + 256;
  if (queue_.size() >= options_.queue_events || queue_bytes_ + bytes > options_.queue_bytes) {
    ++stats_.dropped_events;
    stats_.dropped_bytes += event.text.size();
    return;
  }
  ++stats_.events;
  queue_bytes_ += bytes;
  queue_.push_back(Item{event, false, bytes});
  lock.unlock();
  cv_.notify_one();
}

void EventProcessor::flush() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return closed_ || (queue_.empty() && !busy_); });
  lock.unlock();
  // The worker flushed the sink before going idle.
}

void EventProcessor::close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;  // the worker drains the queue, flushes every connection, then returns
  }
  cv_.notify_one();
  if (worker_.joinable()) worker_.join();
  std::lock_guard lock(mu_);
  closed_ = true;
  idle_cv_.notify_all();
}

ProcessorStats EventProcessor::stats() const {
  std::lock_guard lock(mu_);
  ProcessorStats s = stats_;
  s.messages = messages_.load();
  s.flushed_idle = flushed_idle_.load();
  s.evicted = evicted_.load();
  return s;
}

void EventProcessor::run() {
  auto next_sweep = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  for (;;) {
    Item item;
    bool have = false;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      if (queue_.empty()) {
        busy_ = false;
        idle_cv_.notify_all();
        cv_.wait_until(lock, next_sweep, [&] { return !queue_.empty() || closing_; });
      }
      if (!queue_.empty()) {
        item = std::move(queue_.front());
        queue_.pop_front();
        queue_bytes_ -= item.bytes;
        busy_ = true;
        have = true;
      } else if (closing_) {
        stop = true;
      }
    }
    if (have) process(item);
    auto now = std::chrono::steady_clock::now();
    if (now >= next_sweep) {
      sweep(false);
      next_sweep = now + std::chrono::milliseconds(100);
    }
    bool idle;
    {
      std::lock_guard lock(mu_);
      idle = queue_.empty();
    }
    if (idle && have) out_->flush();
    if (stop) break;
  }
  sweep(true);
  out_->flush();
}

void EventProcessor::deliver(Message&& m) {
  uint64_t tsize = tsize_.load();
  if (tsize > 0 && m.event.payload.size() > tsize) m.event.payload.resize(tsize);
  ++messages_;
  if (m.http.partial) ++flushed_idle_;
  out_->write(m);
}

void EventProcessor::process(Item& item) {
  if (auto* audit = std::get_if<AuditEvent>(&item.v)) {
    ++messages_;
    out_->write_audit(*audit);
    return;
  }
  DataEvent& e = std::get<DataEvent>(item.v);
  if (!options_.parse) {
    deliver(raw_message(e, std::move(e.payload), e.length - std::min<uint64_t>(e.length, e.payload.size())));
    return;
  }
  ConnKey key = key_of(e);
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    if (conns_.size() >= options_.max_connections) {
      // Evict the least recently used connection, emitting what it holds.
      auto oldest = conns_.begin();
      for (auto c = conns_.begin(); c != conns_.end(); ++c) {
        if (c->second->last < oldest->second->last) oldest = c;
      }
      for (auto& d : oldest->second->dir) {
        if (d) d->flush();
      }
      conns_.erase(oldest);
      ++evicted_;
    }
    it = conns_.emplace(key, std::make_unique<Connection>()).first;
  }
  Connection& c = *it->second;
  auto& dec = c.dir[e.direction == Direction::kWrite ? 1 : 0];
  if (!dec) {
    dec = std::make_unique<StreamDecoder>(options_.limits, &c.shared,
                                          [this](Message&& m) { deliver(std::move(m)); });
  }
  dec->feed(e, item.gap);
  c.last = std::chrono::steady_clock::now();
  c.dirty = true;
  if (dec->buffered() > options_.limits.max_message) dec->flush();
}

void EventProcessor::sweep(bool all) {
  auto now = std::chrono::steady_clock::now();
  size_t total = 0;
  for (auto it = conns_.begin(); it != conns_.end();) {
    Connection& c = *it->second;
    bool expired = all || now - c.last >= options_.conn_expiry;
    if (c.dirty && (expired || now - c.last >= options_.idle_flush)) {
      for (auto& d : c.dir) {
        if (d) d->flush();
      }
      c.dirty = false;
    }
    if (expired) {
      it = conns_.erase(it);
      continue;
    }
    for (auto& d : c.dir) {
      if (d) total += d->buffered();
    }
    ++it;
  }
  if (total > options_.max_buffered) {
    for (auto& [k, c] : conns_) {
      for (auto& d : c->dir) {
        if (d) d->flush();
      }
    }
  }
}

}  // namespace ecapture
