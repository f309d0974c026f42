// Conversion of the kernel's CLOCK_MONOTONIC timestamps (bpf_ktime_get_ns) to wall-clock time.
#pragma once

#include <cstdint>
#include <ctime>

namespace ecapture {

// CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns: add it to a BPF timestamp to get wall time.
inline int64_t monotonic_to_wall_ns() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(rt.tv_sec) - mono.tv_sec) * 1000000000ll +
         (static_cast<int64_t>(rt.tv_nsec) - mono.tv_nsec);
}

}  // namespace ecapture
