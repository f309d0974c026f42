// Reads a module's `events` map (ring buffer, or perf buffer on kernels without one) on its own
// thread and hands each record to a handler. The libbpf callbacks are thin trampolines: a
// handler's error or exception is counted as a decode error and never crosses into C, and a
// failing poll ends the thread and is reported once.
#pragma once

#include <bpf/libbpf.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <thread>

#include "core/result.h"

struct ring_buffer;
struct perf_buffer;

namespace ecapture::bpf {

// The ring buffer's size: --mapsize keeps eCapture's meaning (pages per CPU, for its per-CPU perf
// buffers), but one ring serves every CPU, so the total is rounded up to a power of two and capped
// at kMaxRingBytes (a 64-CPU host would otherwise get 256 MiB for the default).
constexpr uint64_t kMaxRingBytes = 128ull << 20;
struct RingSize {
  uint64_t bytes = 0;      // what the ring gets
  uint64_t wanted = 0;     // mapsize pages x page size x possible CPUs
  bool capped = false;     // wanted > kMaxRingBytes
};
RingSize ring_size_for(uint64_t mapsize_pages, int cpus, uint64_t page_size);

// Before load: makes `map` a ring buffer sized by ring_size_for, or a perf event array when
// ringbuf is false. Returns the ring buffer's size in bytes (0 for a perf event array); `*size`,
// when given, gets the whole RingSize (for the message when capped).
Result<uint64_t> configure_event_map(bpf_map* map, bool ringbuf, uint64_t mapsize_pages,
                                     RingSize* size = nullptr);

// Sum over CPUs of slot `index` of a per-CPU u64 array.
uint64_t read_percpu_counter(const bpf_map* map, uint32_t index);

class EventReader;
// Records a module lost: those the BPF side could not output or read (its `ecap_counters` map,
// may be null) and those the reader missed (may be null).
uint64_t lost_records(const bpf_map* counters, const EventReader* reader);

// BPF map updates of a module that failed (map full, no memory): its `ecap_counters` map's
// ECAP_CNT_MAP_FAILED slot; 0 when `counters` is null.
uint64_t map_update_failures(const bpf_map* counters);

class EventReader {
 public:
  using Handler = std::function<Result<void>(std::span<const uint8_t>)>;
  using Tick = std::function<void()>;
  // A record the handler refused (or threw on), with the number refused so far.
  using RecordError = std::function<void(const Error&, uint64_t count)>;
  // The poll itself failed: the reader thread has ended.
  using PollError = std::function<void(const Error&)>;
  // What the reader polls: libbpf's ring buffer, or a test's source, which hands records to
  // `deliver(ctx, data, size)` (the real ring-buffer trampoline) and returns a libbpf-style count
  // or -errno.
  using RingCallback = int (*)(void* ctx, void* data, size_t size);
  using PollSource = std::function<int(int timeout_ms, RingCallback deliver, void* ctx)>;

  // `tick`, when given, runs on the reader thread after every poll (at least every 10 ms).
  static Result<std::unique_ptr<EventReader>> create(bpf_map* map, bool ringbuf,
                                                     uint64_t mapsize_pages, Handler handler,
                                                     Tick tick = {});
  // A reader over `source` instead of a kernel map (unit tests of the seam).
  static std::unique_ptr<EventReader> over(PollSource source, Handler handler, Tick tick = {});
  // Set before start().
  void on_record_error(RecordError f) { on_record_error_ = std::move(f); }
  void on_poll_error(PollError f) { on_poll_error_ = std::move(f); }
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  void start();
  // Stops polling, drains what is left, joins the thread. Idempotent.
  void stop();
  // Records the kernel reported lost (perf buffer only; ring buffer losses are counted in BPF).
  uint64_t lost() const { return lost_.load(); }
  // Records the handler refused or threw on.
  uint64_t decode_errors() const { return decode_errors_.load(); }

 private:
  EventReader() = default;
  static int on_ring_record(void* ctx, void* data, size_t size);
  static void on_perf_record(void* ctx, int cpu, void* data, uint32_t size);
  static void on_perf_lost(void* ctx, int cpu, __u64 count);
  void loop();
  int poll_once();
  void handle(std::span<const uint8_t> record) noexcept;
  void handle_failure(const Error& e) noexcept;

  ring_buffer* ring_ = nullptr;
  perf_buffer* perf_ = nullptr;
  PollSource source_;
  Handler handler_;
  Tick tick_;
  RecordError on_record_error_;
  PollError on_poll_error_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> lost_{0};
  std::atomic<uint64_t> decode_errors_{0};
  std::thread thread_;
};

}  // namespace ecapture::bpf
