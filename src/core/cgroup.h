// cgroup v2 for events and filters: the directory --cgroup_path names, a cgroup id (what
// bpf_get_current_cgroup_id returns, the inode number of the cgroup's directory) resolved to its
// path, and the container a path names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"

namespace ecapture {

// What the cgroup path of a process says about its container.
struct ContainerRef {
  // "docker", "containerd", "cri-o", "podman", "systemd-nspawn", "lxc" or "kubernetes"
  std::string runtime;
  std::string id;  // a hex container id, or the machine/container name (nspawn, lxc)
};

// The container a cgroup path names (the innermost one when containers nest), if any. Knows
// docker (docker-<id>.scope, /docker/<id>), containerd/CRI (cri-containerd-<id>.scope), CRI-O
// (crio-<id>.scope), kubepods with the cgroupfs driver (/kubepods/.../pod<uid>/<id>), podman
// (libpod-<id>.scope, /libpod_parent/libpod-<id>), systemd-nspawn (machine.slice/machine-<name>
// .scope) and lxc (/lxc/<name>, /lxc.payload.<name>).
std::optional<ContainerRef> container_from_cgroup_path(std::string_view path);

// How text output shows a container id: a hex id's first 12 characters (docker ps), a name whole.
std::string short_container_id(std::string_view id);

// One cgroup as events show it.
struct CgroupInfo {
  uint64_t id = 0;
  std::string path;  // as /proc/<pid>/cgroup shows it ("/system.slice/x.service"); "" when gone
  std::string container_id;       // "" when the path names no container
  std::string container_runtime;  // with container_id
};

// The cgroup v2 mount point in this mount namespace (from /proc/self/mountinfo), or
// /sys/fs/cgroup when none is listed.
std::string cgroup2_mount_point();

// A cgroup v2 directory given by the user (--cgroup_path).
struct CgroupDir {
  uint64_t id = 0;   // its inode number: the cgroup id
  std::string path;  // the cgroup path, relative to the hierarchy's root ("/a/b")
};

// Checks that `dir` is a directory on a cgroup2 file system and returns its id. The error says
// what `dir` is instead (missing, a file, on another file system) without naming the flag.
Result<CgroupDir> resolve_cgroup_dir(const std::string& dir);

// Cgroup id -> CgroupInfo, cached. Ids of cgroup v2 are never reused, so an answer (also "gone")
// stays true; the cache is bounded (cleared when full). Thread-safe.
class CgroupResolver {
 public:
  // `mount`: where the hierarchy is mounted (cgroup2_mount_point() for the host's).
  explicit CgroupResolver(std::string mount, size_t capacity = 4096);
  ~CgroupResolver();
  CgroupResolver(const CgroupResolver&) = delete;
  CgroupResolver& operator=(const CgroupResolver&) = delete;

  // Null for id 0 (the kernel gave none); otherwise the cgroup, with an empty path when no
  // directory has that id any more.
  std::shared_ptr<const CgroupInfo> lookup(uint64_t id);
  size_t cached() const;

  // The process-wide resolver on this namespace's cgroup2 mount.
  static CgroupResolver& host();

 private:
  std::string find_path(uint64_t id);  // with mu_ held
  std::string by_handle(uint64_t id);

  const std::string mount_;
  const size_t capacity_;
  int mount_fd_ = -1;
  int handle_type_ = -1;  // the kernfs file handle type, -1: open_by_handle_at is not used
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<const CgroupInfo>> cache_;
};

// `path` relative to the hierarchy mounted at `mount` ("/" for the mount itself), or nullopt when
// it is outside.
std::optional<std::string> cgroup_relative_path(std::string_view mount, std::string_view path);

// True when cgroup path `path` is `ancestor` or below it.
bool cgroup_path_under(std::string_view path, std::string_view ancestor);

}  // namespace ecapture
