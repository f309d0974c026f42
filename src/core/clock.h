// Conversion of the kernel's CLOCK_MONOTONIC timestamps (bpf_ktime_get_ns) to wall-clock time.
#pragma once

#include <cstdint>
#include <ctime>

namespace ecapture {

// CLOCK_MONOTONIC now, in ns (the kernel side's bpf_ktime_get_ns clock).
inline uint64_t monotonic_now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

// CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns: add it to a BPF timestamp to get wall time.
inline int64_t monotonic_to_wall_ns() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(rt.tv_sec) - mono.tv_sec) * 1000000000ll +
         (static_cast<int64_t>(rt.tv_nsec) - mono.tv_nsec);
}

}  // namespace ecapture
