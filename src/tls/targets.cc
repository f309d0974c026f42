// Target discovery through /proc/*/maps.
#include "tls/targets.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>

namespace ecapture::tls {
namespace {

bool parse_hex(std::string_view s, uint64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits off the next space-separated field of `rest`.
std::string_view next_field(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const size_t end = std::min(rest.find(' '), rest.size());
  std::string_view f = rest.substr(0, end);
  rest.remove_prefix(end);
  return f;
}

std::optional<FileId> stat_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

}  // namespace

uint64_t kernel_dev_to_user(uint64_t kdev) {
  return makedev(static_cast<unsigned>(kdev >> 20), static_cast<unsigned>(kdev & 0xfffff));
}

uint64_t user_dev_to_kernel(uint64_t udev) {
  return (static_cast<uint64_t>(major(udev)) << 20) | minor(udev);
}

std::vector<MapsEntry> parse_maps(std::string_view text) {
  std::vector<MapsEntry> out;
  while (!text.empty()) {
    const size_t nl = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(std::min(nl + 1, text.size()));
    // "start-end perms offset major:minor inode   path"
    std::string_view rest = line;
    const std::string_view range = next_field(rest);
    const std::string_view perms = next_field(rest);
    next_field(rest);  // offset
    const std::string_view dev = next_field(rest);
    const std::string_view inode = next_field(rest);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (!rest.starts_with('/') || rest.ends_with(" (deleted)") || perms.size() < 4) continue;
    MapsEntry e;
    const size_t dash = range.find('-');
    const size_t colon = dev.find(':');
    uint64_t major_no = 0, minor_no = 0;
    if (dash == std::string_view::npos || colon == std::string_view::npos ||
        !parse_hex(range.substr(0, dash), &e.start) || !parse_hex(range.substr(dash + 1), &e.end) ||
        !parse_hex(dev.substr(0, colon), &major_no) ||
        !parse_hex(dev.substr(colon + 1), &minor_no)) {
      continue;
    }
    auto [p, ec] = std::from_chars(inode.data(), inode.data() + inode.size(), e.id.ino);
    if (ec != std::errc() || e.id.ino == 0) continue;
    e.id.dev = makedev(static_cast<unsigned>(major_no), static_cast<unsigned>(minor_no));
    e.exec = perms[2] == 'x';
    e.path = std::string(rest);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<Reached> reach_mapped_file(int pid, const MapsEntry& e) {
  const std::string proc = fmt::format("/proc/{}", pid);
  for (std::string path : {e.path, proc + "/root" + e.path,
                           fmt::format("{}/map_files/{:x}-{:x}", proc, e.start, e.end)}) {
    if (auto id = stat_id(path); id && *id == e.id) return Reached{std::move(path), *id};
  }
  return std::nullopt;
}

std::vector<Target> group_targets(const std::vector<std::pair<int, std::vector<MapsEntry>>>& procs,
                                  const Reach& reach) {
  std::map<FileId, Target> by_id;
  for (const auto& [pid, entries] : procs) {
    for (const MapsEntry& e : entries) {
      if (!e.exec) continue;
      auto it = by_id.find(e.id);
      if (it != by_id.end()) {
        it->second.pids.insert(pid);
        continue;
      }
      auto reached = reach(pid, e);
      if (!reached) continue;
      Target t{reached->id, e.path, reached->path, {pid}};
      by_id.emplace(e.id, std::move(t));
    }
  }
  std::vector<Target> out;
  for (auto& [id, t] : by_id) out.push_back(std::move(t));
  return out;
}

std::vector<Target> scan_targets(int only_pid, int skip_pid, const std::string& proc_root) {
  std::vector<int> pids;
  if (only_pid > 0) {
    pids.push_back(only_pid);
  } else {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(proc_root.c_str()), ::closedir);
    if (!dir) return {};
    while (const dirent* ent = ::readdir(dir.get())) {
      if (all_digits(ent->d_name)) pids.push_back(std::atoi(ent->d_name));
    }
  }
  std::vector<std::pair<int, std::vector<MapsEntry>>> procs;
  for (int pid : pids) {
    if (pid == skip_pid) continue;
    // Processes exit and some deny access while we look: they contribute nothing.
    std::ifstream f(fmt::format("{}/{}/maps", proc_root, pid));
    if (!f) continue;
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    procs.emplace_back(pid, parse_maps(text));
  }
  return group_targets(procs, reach_mapped_file);
}

}  // namespace ecapture::tls
