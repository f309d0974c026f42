// libbpf logging, RLIMIT_MEMLOCK, tracefs and feature probes.
#include "bpf/libbpf_env.h"

#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ecapture::bpf {
namespace {

std::atomic<spdlog::logger*> g_log{nullptr};

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  spdlog::logger* log = g_log.load();
  if (log == nullptr) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string line(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(line.data(), line.size() + 1, format, args);  // verifier logs are long
  while (!line.empty() && line.back() == '\n') line.pop_back();
  // libbpf suggests raising `ulimit -l` on any EPERM, which misleads on memcg-accounted kernels.
  if (level == LIBBPF_WARN && line.find("ulimit") == std::string::npos) {
    log->debug("libbpf: {}", line);
  } else {
    log->trace("libbpf: {}", line);
  }
  return 0;
}

}  // namespace

void prepare_environment(spdlog::logger& log) {
  g_log.store(&log);
  libbpf_set_print(libbpf_print);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

  rlimit rl{RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
    log.debug("could not raise RLIMIT_MEMLOCK ({}); fine on kernels that account BPF memory to "
              "the memory cgroup", std::strerror(errno));
  }

  struct stat st {};
  if (stat("/sys/kernel/tracing/events", &st) != 0) {
    if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
      log.warn("tracefs is not mounted at /sys/kernel/tracing and mounting it failed ({}); "
               "uprobes may not attach", std::strerror(errno));
    } else {
      log.debug("mounted tracefs at /sys/kernel/tracing");
    }
  }
}

bool ringbuf_supported() {
  const char* force = std::getenv("ECAPTURE_FORCE_PERFBUF");
  if (force != nullptr && std::strcmp(force, "1") == 0) return false;
  return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
}

std::string kernel_release() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

}  // namespace ecapture::bpf
