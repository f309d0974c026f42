// Filling the cgroup array of the --cgroup_path filter.
#include "bpf/cgroup_filter.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace ecapture::bpf {

Result<void> fill_cgroup_filter(bpf_map* map, const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "--cgroup_path {}: cannot open it", dir);
  const uint32_t key = 0;
  const uint32_t value = static_cast<uint32_t>(fd);
  // The map keeps its own reference to the cgroup: the fd is not needed afterwards.
  const int err = bpf_map_update_elem(bpf_map__fd(map), &key, &value, BPF_ANY);
  const int saved = errno;
  ::close(fd);
  if (err != 0) {
    return make_errno_error(saved, "--cgroup_path {}: the kernel refused it as a cgroup v2 "
                                   "directory", dir);
  }
  return {};
}

}  // namespace ecapture::bpf
