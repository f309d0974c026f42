// Ring buffer / perf buffer polling thread.
#include "bpf/event_reader.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <vector>

#include "ecap_abi.h"

namespace ecapture::bpf {
namespace {
// The kernel side wakes us only for large backlogs (ringbuf_wakeup_bytes); small records wait
// for the next timed poll.
constexpr int kPollTimeoutMs = 10;
}

RingSize ring_size_for(uint64_t mapsize_pages, int cpus, uint64_t page_size) {
  RingSize r;
  r.wanted = mapsize_pages * page_size * static_cast<uint64_t>(cpus > 0 ? cpus : 1);
  r.capped = r.wanted > kMaxRingBytes;
  uint64_t want = r.capped ? kMaxRingBytes : r.wanted;
  r.bytes = page_size;
  while (r.bytes < want) r.bytes <<= 1;
  return r;
}

Result<uint64_t> configure_event_map(bpf_map* map, bool ringbuf, uint64_t mapsize_pages,
                                     RingSize* out) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return make_errno_error(cpus, "cannot count the possible CPUs");
  if (ringbuf) {
    RingSize r = ring_size_for(mapsize_pages, cpus, static_cast<uint64_t>(getpagesize()));
    if (out != nullptr) *out = r;
    if (int err = bpf_map__set_max_entries(map, static_cast<uint32_t>(r.bytes)); err != 0) {
      return make_errno_error(err, "cannot size the ring buffer to {} bytes", r.bytes);
    }
    return r.bytes;
  }
  if (int err = bpf_map__set_type(map, BPF_MAP_TYPE_PERF_EVENT_ARRAY); err != 0) {
    return make_errno_error(err, "cannot turn the event map into a perf event array");
  }
  bpf_map__set_key_size(map, sizeof(uint32_t));
  bpf_map__set_value_size(map, sizeof(uint32_t));
  bpf_map__set_max_entries(map, static_cast<uint32_t>(cpus));
  return uint64_t{0};
}

uint64_t read_percpu_counter(const bpf_map* map, uint32_t index) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return 0;
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(bpf_map__fd(map), &index, values.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  return sum;
}

uint64_t lost_records(const bpf_map* counters, const EventReader* reader) {
  uint64_t lost = 0;
  if (counters != nullptr) {
    lost += read_percpu_counter(counters, ECAP_CNT_LOST) +
            read_percpu_counter(counters, ECAP_CNT_READ_FAILED);
  }
  if (reader != nullptr) lost += reader->lost();
  return lost;
}

uint64_t map_update_failures(const bpf_map* counters) {
  return counters != nullptr ? read_percpu_counter(counters, ECAP_CNT_MAP_FAILED) : 0;
}

Result<std::unique_ptr<EventReader>> EventReader::create(bpf_map* map, bool ringbuf,
                                                         uint64_t mapsize_pages,
                                                         Handler handler, Tick tick) {
  std::unique_ptr<EventReader> r(new EventReader());
  r->handler_ = std::move(handler);
  r->tick_ = std::move(tick);
  if (ringbuf) {
    r->ring_ = ring_buffer__new(bpf_map__fd(map), &EventReader::on_ring_record, r.get(), nullptr);
    if (r->ring_ == nullptr) return make_errno_error(errno, "cannot open the ring buffer");
  } else {
    // perf buffers want a power-of-two page count per CPU.
    size_t pages = 1;
    while (pages < mapsize_pages && pages < (1u << 16)) pages <<= 1;
    r->perf_ = perf_buffer__new(bpf_map__fd(map), pages, &EventReader::on_perf_record,
                                &EventReader::on_perf_lost, r.get(), nullptr);
    if (r->perf_ == nullptr) return make_errno_error(errno, "cannot open the perf buffer");
  }
  return r;
}

std::unique_ptr<EventReader> EventReader::over(PollSource source, Handler handler, Tick tick) {
  std::unique_ptr<EventReader> r(new EventReader());
  r->source_ = std::move(source);
  r->handler_ = std::move(handler);
  r->tick_ = std::move(tick);
  return r;
}

EventReader::~EventReader() {
  stop();
  if (ring_ != nullptr) ring_buffer__free(ring_);
  if (perf_ != nullptr) perf_buffer__free(perf_);
}

void EventReader::start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] { loop(); });
}

void EventReader::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

int EventReader::poll_once() {
  if (source_) return source_(kPollTimeoutMs, &EventReader::on_ring_record, this);
  if (ring_ != nullptr) {
    // Records sent without a wakeup do not make epoll return: consume them on every timeout.
    int n = ring_buffer__poll(ring_, kPollTimeoutMs);
    return n == 0 ? ring_buffer__consume(ring_) : n;
  }
  return perf_buffer__poll(perf_, kPollTimeoutMs);
}

void EventReader::loop() {
  while (!stop_.load()) {
    const int n = poll_once();
    if (n < 0 && n != -EINTR) {
      if (on_poll_error_) {
        on_poll_error_(make_errno_error(n, "reading the event buffer failed; capture stopped"));
      }
      return;
    }
    if (tick_) {
      try {
        tick_();
      } catch (const std::exception& e) {
        handle_failure(make_error("{}", e.what()));
      }
    }
  }
  // Whatever the kernel produced before the probes went away is still delivered.
  if (source_) {
    source_(0, &EventReader::on_ring_record, this);
  } else if (ring_ != nullptr) {
    ring_buffer__consume(ring_);
  } else {
    perf_buffer__consume(perf_);
  }
}

void EventReader::handle_failure(const Error& e) noexcept {
  const uint64_t n = decode_errors_.fetch_add(1) + 1;
  if (!on_record_error_) return;
  try {
    on_record_error_(e, n);
  } catch (...) {  // a logger that throws must not take the reader down
  }
}

void EventReader::handle(std::span<const uint8_t> record) noexcept {
  try {
    if (auto r = handler_(record); !r) handle_failure(r.error());
  } catch (const std::exception& e) {
    handle_failure(make_error("{}", e.what()));
  } catch (...) {
    handle_failure(make_error("unknown exception in a record handler"));
  }
}

int EventReader::on_ring_record(void* ctx, void* data, size_t size) {
  static_cast<EventReader*>(ctx)->handle(
      std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  return 0;
}

void EventReader::on_perf_record(void* ctx, int /*cpu*/, void* data, uint32_t size) {
  static_cast<EventReader*>(ctx)->handle(
      std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
}

void EventReader::on_perf_lost(void* ctx, int /*cpu*/, __u64 count) {
  static_cast<EventReader*>(ctx)->lost_.fetch_add(count);
}

}  // namespace ecapture::bpf
