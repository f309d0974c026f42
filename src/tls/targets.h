// Host-wide target discovery: the files mapped by running processes (/proc/*/maps), grouped by
// identity (device + inode) so that one file used by many processes, in any mount namespace, is
// one target, reached through a path that works from ecapture's own mount namespace.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ecapture::tls {

// A file's identity as stat() gives it (st_dev, st_ino).
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  auto operator<=>(const FileId&) const = default;
};

// The kernel's dev_t (major << 20 | minor, as BPF reads inode->i_sb->s_dev) and stat()'s.
uint64_t kernel_dev_to_user(uint64_t kdev);
uint64_t user_dev_to_kernel(uint64_t udev);

// One file-backed line of /proc/<pid>/maps.
struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  bool exec = false;
  FileId id;         // from the maps line's device (major:minor) and inode
  std::string path;  // as the process sees it
};

// The file-backed lines of a maps text (anonymous, pseudo ("[vdso]") and deleted files skipped).
std::vector<MapsEntry> parse_maps(std::string_view text);

// A path to `e` of process `pid` from here, with the identity stat() gives it; nullopt when the
// file cannot be reached (the process is gone, no permission).
struct Reached {
  std::string path;
  FileId id;
};
using Reach = std::function<std::optional<Reached>(int pid, const MapsEntry& e)>;

// Reaches a file the way ecapture does: its own path when that is the same file here, else
// /proc/<pid>/root/<path> when that is, else /proc/<pid>/map_files/<start>-<end>.
std::optional<Reached> reach_mapped_file(int pid, const MapsEntry& e);

// A distinct file mapped executable by running processes.
struct Target {
  FileId id;
  std::string path;       // as (the first) process sees it
  std::string host_path;  // from ecapture's mount namespace
  std::set<int> pids;
};

// Groups the executable mappings of `procs` (pid, its maps) into one Target per identity; the
// same file mapped twice by a process, or through two paths, is one target.
std::vector<Target> group_targets(const std::vector<std::pair<int, std::vector<MapsEntry>>>& procs,
                                  const Reach& reach);

// Scans /proc once: every process (only `only_pid` when > 0) but `skip_pid`.
std::vector<Target> scan_targets(int only_pid = 0, int skip_pid = 0,
                                 const std::string& proc_root = "/proc");

}  // namespace ecapture::tls
