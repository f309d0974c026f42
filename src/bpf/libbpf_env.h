// Process-wide libbpf setup and kernel feature probes.
#pragma once

#include <spdlog/logger.h>

#include "core/result.h"

namespace ecapture::bpf {

// Routes libbpf's messages to `log` (debug level unless they are warnings), raises
// RLIMIT_MEMLOCK when allowed (failure is only logged: kernels >= 5.11 charge BPF memory to the
// memcg), and mounts tracefs at /sys/kernel/tracing when it is missing. Safe to call repeatedly.
void prepare_environment(spdlog::logger& log);

// True when the kernel supports BPF_MAP_TYPE_RINGBUF. ECAPTURE_FORCE_PERFBUF=1 forces false (to
// exercise the perf buffer path).
bool ringbuf_supported();

// Kernel release string (uname -r).
std::string kernel_release();

}  // namespace ecapture::bpf
