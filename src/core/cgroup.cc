// cgroup v2 ids, paths and container ids.
#include "core/cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace ecapture {
namespace {

bool is_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A full container id (docker, containerd and podman all use 64 hex digits).
bool is_full_id(std::string_view s) { return s.size() == 64 && is_hex(s); }

// A prefixed id (the prefix already says which runtime): any hex id of docker's short length or
// more.
bool is_prefixed_id(std::string_view s) { return s.size() >= 12 && is_hex(s); }

// systemd unit names escape bytes as \xNN ('-' in a machine name becomes \x2d).
std::string unescape_unit(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 2, 2)), nullptr, 16));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool take_prefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// The container that one path component names, given the components before it.
std::optional<ContainerRef> container_of(const std::vector<std::string_view>& parts, size_t i) {
  std::string_view c = parts[i];
  const std::string_view parent = i > 0 ? parts[i - 1] : std::string_view();
  constexpr std::string_view kScope = ".scope";
  if (c.size() > kScope.size() && c.substr(c.size() - kScope.size()) == kScope) {
    c.remove_suffix(kScope.size());
    // Conmon, podman's and CRI-O's monitor, runs next to the container, not in it.
    if (c.starts_with("libpod-conmon-") || c.starts_with("crio-conmon-")) return std::nullopt;
    struct Prefix {
      std::string_view prefix, runtime;
    };
    static constexpr Prefix kPrefixes[] = {{"docker-", "docker"},
                                           {"cri-containerd-", "containerd"},
                                           {"crio-", "cri-o"},
                                           {"libpod-", "podman"}};
    for (const Prefix& p : kPrefixes) {
      std::string_view id = c;
      if (take_prefix(id, p.prefix) && is_prefixed_id(id)) {
        return ContainerRef{std::string(p.runtime), std::string(id)};
      }
    }
    std::string_view name = c;
    if (parent == "machine.slice" && take_prefix(name, "machine-") && !name.empty()) {
      return ContainerRef{"systemd-nspawn", unescape_unit(name)};
    }
    return std::nullopt;
  }
  // The cgroupfs drivers: plain directories.
  if (parent == "docker" && is_full_id(c)) return ContainerRef{"docker", std::string(c)};
  std::string_view id = c;
  if (take_prefix(id, "libpod-") && is_full_id(id)) {
    return ContainerRef{"podman", std::string(id)};
  }
  if (parent.starts_with("pod") && is_full_id(c)) {
    for (size_t k = 0; k + 1 < i; ++k) {
      if (parts[k] == "kubepods" || parts[k].starts_with("kubepods")) {
        return ContainerRef{"kubernetes", std::string(c)};
      }
    }
  }
  if (parent == "lxc" && !c.empty()) return ContainerRef{"lxc", std::string(c)};
  std::string_view lxc = c;
  if (take_prefix(lxc, "lxc.payload.") && !lxc.empty()) {
    return ContainerRef{"lxc", std::string(lxc)};
  }
  return std::nullopt;
}

// The mount point of a mountinfo line's field: octal escapes (\040 for a space) undone.
std::string unescape_mount(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool on_cgroup2(const char* path) {
  struct statfs fs {};
  return ::statfs(path, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

}  // namespace

std::optional<ContainerRef> container_from_cgroup_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.push_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  std::optional<ContainerRef> found;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (auto c = container_of(parts, i)) found = std::move(c);
  }
  return found;
}

std::string short_container_id(std::string_view id) {
  if (id.size() > 12 && is_hex(id)) return std::string(id.substr(0, 12));
  return std::string(id);
}

std::string cgroup2_mount_point() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const size_t sep = line.find(" - ");
    if (sep == std::string::npos || line.compare(sep + 3, 8, "cgroup2 ") != 0) continue;
    std::vector<std::string_view> f;
    std::string_view rest(line.data(), sep);
    while (!rest.empty() && f.size() < 5) {
      const size_t sp = rest.find(' ');
      f.push_back(rest.substr(0, sp));
      if (sp == std::string_view::npos) break;
      rest.remove_prefix(sp + 1);
    }
    if (f.size() == 5 && f[3] == "/") return unescape_mount(f[4]);
  }
  return "/sys/fs/cgroup";
}

std::optional<std::string> cgroup_relative_path(std::string_view mount, std::string_view path) {
  while (mount.size() > 1 && mount.back() == '/') mount.remove_suffix(1);
  if (path == mount) return std::string("/");
  if (path.size() > mount.size() && path.substr(0, mount.size()) == mount &&
      path[mount.size()] == '/') {
    return std::string(path.substr(mount.size()));
  }
  return std::nullopt;
}

bool cgroup_path_under(std::string_view path, std::string_view ancestor) {
  if (ancestor == "/") return !path.empty();
  if (path.substr(0, ancestor.size()) != ancestor) return false;
  return path.size() == ancestor.size() || path[ancestor.size()] == '/';
}

Result<CgroupDir> resolve_cgroup_dir(const std::string& dir) {
  const std::string mount = cgroup2_mount_point();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return make_error("{}: {} (give a cgroup v2 directory: one under {})", dir,
                      errno == ENOENT ? "no such directory" : std::strerror(errno), mount);
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error("{}: not a directory (give a cgroup v2 directory: one under {})", dir, mount);
  }
  if (!on_cgroup2(dir.c_str())) {
    return make_error("{}: not a cgroup v2 directory (it is not on a cgroup2 file system; give "
                      "one under {})", dir, mount);
  }
  char real[PATH_MAX];
  if (::realpath(dir.c_str(), real) == nullptr) {
    return make_errno_error(errno, "{}: cannot resolve the path", dir);
  }
  // The hierarchy's root: the topmost directory above that is on the same cgroup2 mount.
  std::filesystem::path top = real;
  for (std::filesystem::path p = top; p.has_relative_path(); p = p.parent_path()) {
    struct stat ps {};
    if (::stat(p.parent_path().c_str(), &ps) != 0 || ps.st_dev != st.st_dev ||
        !on_cgroup2(p.parent_path().c_str())) {
      top = p;
      break;
    }
  }
  CgroupDir out;
  out.id = st.st_ino;
  out.path = cgroup_relative_path(top.string(), real).value_or(real);
  return out;
}

CgroupResolver::CgroupResolver(std::string mount, size_t capacity)
    : mount_(std::move(mount)), capacity_(capacity) {
  mount_fd_ = ::open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd_ < 0 || !on_cgroup2(mount_.c_str())) return;
  // kernfs hands out 8-byte handles that hold the cgroup id: learn their type from the root's.
  struct {
    file_handle fh;
    unsigned char bytes[MAX_HANDLE_SZ];
  } h{};
  h.fh.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  struct stat st {};
  if (::name_to_handle_at(mount_fd_, "", &h.fh, &mount_id, AT_EMPTY_PATH) == 0 &&
      h.fh.handle_bytes == sizeof(uint64_t) && ::fstat(mount_fd_, &st) == 0) {
    uint64_t id = 0;
    std::memcpy(&id, h.fh.f_handle, sizeof(id));
    if (id == st.st_ino) handle_type_ = h.fh.handle_type;
  }
}

CgroupResolver::~CgroupResolver() {
  if (mount_fd_ >= 0) ::close(mount_fd_);
}

CgroupResolver& CgroupResolver::host() {
  static CgroupResolver resolver(cgroup2_mount_point());
  return resolver;
}

size_t CgroupResolver::cached() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

std::shared_ptr<const CgroupInfo> CgroupResolver::lookup(uint64_t id) {
  if (id == 0) return nullptr;
  std::lock_guard lock(mu_);
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  auto info = std::make_shared<CgroupInfo>();
  info->id = id;
  info->path = find_path(id);
  if (auto c = container_from_cgroup_path(info->path)) {
    info->container_id = std::move(c->id);
    info->container_runtime = std::move(c->runtime);
  }
  if (cache_.size() >= capacity_) cache_.clear();
  cache_.emplace(id, info);
  return info;
}

std::string CgroupResolver::find_path(uint64_t id) {
  if (handle_type_ >= 0) {
    std::string p = by_handle(id);
    if (!p.empty()) return p;
  }
  // Without handles (or if the handle did not open): look for the directory.
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(
      mount_, std::filesystem::directory_options::skip_permission_denied, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_symlink(type_ec) || !it->is_directory(type_ec)) continue;  // d_type: no stat
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && st.st_ino == id) {
      return cgroup_relative_path(mount_, it->path().string()).value_or("");
    }
  }
  struct stat root {};
  if (::stat(mount_.c_str(), &root) == 0 && root.st_ino == id) return "/";
  return "";
}

std::string CgroupResolver::by_handle(uint64_t id) {
  struct {
    file_handle fh;
    unsigned char bytes[sizeof(uint64_t)];
  } h{};
  h.fh.handle_bytes = sizeof(id);
  h.fh.handle_type = handle_type_;
  std::memcpy(h.fh.f_handle, &id, sizeof(id));
  const int fd = ::open_by_handle_at(mount_fd_, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return "";  // ESTALE: the cgroup is gone
  char link[PATH_MAX];
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(proc.c_str(), link, sizeof(link) - 1);
  ::close(fd);
  if (n <= 0) return "";
  return cgroup_relative_path(mount_, std::string_view(link, static_cast<size_t>(n))).value_or("");
}

}  // namespace ecapture
