// Library lookup the way ld.so does it: ld.so.conf, the binary ld cache, default dirs, /proc maps.
#include "elf/lib_discovery.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <fmt/ranges.h>

namespace ecapture::elf {
namespace {

// Debian multiarch triplet and the ld cache flags ldconfig writes for this architecture's
// libraries (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 / FLAG_AARCH64_LIB64 in glibc's ldconfig.h).
#if defined(__x86_64__)
constexpr std::string_view kMultiarch = "x86_64-linux-gnu";
constexpr int32_t kCacheFlags = 0x0303;
#elif defined(__aarch64__)
constexpr std::string_view kMultiarch = "aarch64-linux-gnu";
constexpr int32_t kCacheFlags = 0x0a03;
#else
#error "ecapture supports x86_64 and aarch64 only"
#endif

// A conf file including itself (directly or via a glob) must not recurse forever.
constexpr int kMaxIncludeDepth = 16;

// glibc's two on-disk formats. The old one ("ld.so-1.7.0") may precede the new one in the same
// file; every string offset in either is relative to where the new header starts (or, in an
// old-only file, to where the old entry table ends).
constexpr std::string_view kOldCacheMagic = "ld.so-1.7.0";
constexpr size_t kOldHeaderSize = 16;  // magic[11], padding, uint32 nlibs
constexpr size_t kOldEntrySize = 12;   // int32 flags, uint32 key, uint32 value
constexpr std::string_view kNewCacheMagic = "glibc-ld.so.cache1.1";
constexpr size_t kNewHeaderSize = 48;  // magic+version[20], nlibs, len_strings, flags, ...
constexpr size_t kNewEntrySize = 24;   // int32 flags, key, value, osversion, uint64 hwcap
constexpr size_t kNewNlibsOffset = 20;
constexpr size_t kNewEndianOffset = 28;
constexpr size_t kNewCacheAlign = 8;
// Values of the new header's flags byte (glibc >= 2.33); 0 means "not recorded".
constexpr uint8_t kCacheLittleEndian = 2;
constexpr uint8_t kCacheBigEndian = 3;

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// True when `line` is `keyword` followed by blanks, as ldconfig tests it; strips the keyword.
bool take_keyword(std::string_view& line, std::string_view keyword) {
  if (!line.starts_with(keyword) || line.size() == keyword.size()) return false;
  const char next = line[keyword.size()];
  if (next != ' ' && next != '\t') return false;
  line = trim(line.substr(keyword.size()));
  return true;
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void parse_conf(const std::string& path, int depth, std::vector<std::string>& dirs) {
  if (depth > kMaxIncludeDepth) return;
  std::ifstream in(path);
  if (!in) return;
  std::string text;
  while (std::getline(in, text)) {
    std::string_view line = text;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = trim(line);
    if (line.empty()) continue;
    if (take_keyword(line, "hwcap")) continue;  // obsolete; ldconfig ignores it too
    if (take_keyword(line, "include")) {
      std::istringstream patterns{std::string(line)};
      std::string pattern;
      while (patterns >> pattern) {
        if (pattern.front() != '/') pattern = parent_dir(path) + "/" + pattern;
        glob_t matches{};
        if (glob(pattern.c_str(), 0, nullptr, &matches) == 0) {
          for (size_t i = 0; i < matches.gl_pathc; ++i) {
            parse_conf(matches.gl_pathv[i], depth + 1, dirs);
          }
        }
        globfree(&matches);
      }
      continue;
    }
    // Old ldconfig syntax allowed "dir=libtype"; the type is irrelevant for a path search.
    if (const size_t equal = line.find('='); equal != std::string_view::npos) {
      line = trim(line.substr(0, equal));
    }
    while (line.size() > 1 && line.back() == '/') line.remove_suffix(1);
    if (line.starts_with('/')) dirs.emplace_back(line);  // ld.so ignores relative dirs
  }
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

template <typename T>
T load(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// NUL-terminated string at `offset` inside `strings`; empty when out of range.
std::string_view string_at(std::string_view strings, uint64_t offset) {
  if (offset >= strings.size()) return {};
  const size_t end = strings.find('\0', offset);
  if (end == std::string_view::npos) return {};
  return strings.substr(offset, end - offset);
}

struct CacheEntry {
  std::string path;
  uint64_t hwcap = 0;
};

void collect_entries(std::string_view table, size_t count, size_t entry_size,
                     std::string_view strings, std::string_view soname,
                     std::vector<CacheEntry>& out) {
  for (size_t i = 0; i < count; ++i) {
    const size_t at = i * entry_size;
    const auto flags = load<int32_t>(table, at);
    if (flags != kCacheFlags) continue;
    if (string_at(strings, load<uint32_t>(table, at + 4)) != soname) continue;
    const std::string_view value = string_at(strings, load<uint32_t>(table, at + 8));
    if (value.empty()) continue;
    CacheEntry entry{std::string(value)};
    if (entry_size == kNewEntrySize) entry.hwcap = load<uint64_t>(table, at + 16);
    out.push_back(std::move(entry));
  }
}

std::vector<CacheEntry> parse_cache(std::string_view cache, std::string_view soname) {
  std::vector<CacheEntry> entries;
  size_t new_at = 0;
  if (cache.starts_with(kOldCacheMagic)) {
    if (cache.size() < kOldHeaderSize) return entries;
    const uint64_t count = load<uint32_t>(cache, kOldCacheMagic.size() + 1);
    const uint64_t table_end = kOldHeaderSize + count * kOldEntrySize;
    if (table_end > cache.size()) return entries;
    new_at = (table_end + kNewCacheAlign - 1) / kNewCacheAlign * kNewCacheAlign;
    if (new_at >= cache.size() || !cache.substr(new_at).starts_with(kNewCacheMagic)) {
      // Old format only (pre-2.32 ldconfig with --format=old): strings follow the table.
      collect_entries(cache.substr(kOldHeaderSize), count, kOldEntrySize, cache.substr(table_end),
                      soname, entries);
      return entries;
    }
  }
  const std::string_view fresh = cache.substr(new_at);
  if (!fresh.starts_with(kNewCacheMagic) || fresh.size() < kNewHeaderSize) return entries;
  const uint8_t endian = load<uint8_t>(fresh, kNewEndianOffset);
  const uint8_t native_endian =
      std::endian::native == std::endian::little ? kCacheLittleEndian : kCacheBigEndian;
  if ((endian == kCacheLittleEndian || endian == kCacheBigEndian) && endian != native_endian) {
    return entries;
  }
  const uint64_t count = load<uint32_t>(fresh, kNewNlibsOffset);
  if (kNewHeaderSize + count * kNewEntrySize > fresh.size()) return entries;
  collect_entries(fresh.substr(kNewHeaderSize), count, kNewEntrySize, fresh, soname, entries);
  return entries;
}

std::string read_link(const std::string& path) {
  char target[256];
  const ssize_t n = ::readlink(path.c_str(), target, sizeof(target));
  if (n <= 0) return {};
  return std::string(target, static_cast<size_t>(n));
}

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// The pathname column of a /proc/<pid>/maps line (it may contain spaces), or "".
std::string_view maps_path(std::string_view line) {
  size_t pos = 0;
  for (int field = 0; field < 5; ++field) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    while (pos < line.size() && line[pos] != ' ') ++pos;
  }
  while (pos < line.size() && line[pos] == ' ') ++pos;
  return line.substr(pos);
}

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

}  // namespace

std::vector<std::string> loader_search_dirs(const std::string& conf_path) {
  std::vector<std::string> candidates;
  parse_conf(conf_path, 0, candidates);
  const std::string multiarch(kMultiarch);
  for (const std::string& dir :
       {"/lib/" + multiarch, "/usr/lib/" + multiarch, std::string("/lib64"),
        std::string("/usr/lib64"), std::string("/lib"), std::string("/usr/lib")}) {
    candidates.push_back(dir);
  }
  // Identity, not spelling: with merged /usr, /lib/x and /usr/lib/x are one directory.
  std::set<std::pair<dev_t, ino_t>> seen;
  std::vector<std::string> dirs;
  for (std::string& dir : candidates) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (seen.emplace(st.st_dev, st.st_ino).second) dirs.push_back(std::move(dir));
  }
  return dirs;
}

std::vector<std::string> ld_cache_lookup(const std::string& soname, const std::string& cache_path) {
  std::string cache;
  if (soname.empty() || !read_file(cache_path, cache)) return {};
  std::vector<CacheEntry> entries = parse_cache(cache, soname);
  // Entries for hwcap subdirectories are CPU-specific variants; the baseline one comes first.
  std::stable_partition(entries.begin(), entries.end(),
                        [](const CacheEntry& e) { return e.hwcap == 0; });
  std::vector<std::string> paths;
  for (CacheEntry& entry : entries) {
    if (std::find(paths.begin(), paths.end(), entry.path) == paths.end()) {
      paths.push_back(std::move(entry.path));
    }
  }
  return paths;
}

Result<std::string> find_library(const std::vector<std::string>& sonames) {
  if (sonames.empty()) return make_error("find_library: no library name given");
  const std::vector<std::string> dirs = loader_search_dirs();
  for (const std::string& soname : sonames) {
    for (const std::string& path : ld_cache_lookup(soname)) {
      if (is_regular_file(path)) return path;
    }
    for (const std::string& dir : dirs) {
      std::string path = dir + "/" + soname;
      if (is_regular_file(path)) return path;
    }
  }
  const std::string hint = sonames.front().starts_with("libssl") ? "pass its path with --libssl"
                                                                 : "pass its path explicitly";
  return make_error("cannot find {} in the ld cache or in /etc/ld.so.conf directories ({}); {}",
                    fmt::join(sonames, " or "), fmt::join(dirs, ", "), hint);
}

namespace {
// The prefix that turns a path inside process `pid_dir`'s mount namespace into one that works in
// ours: "" for the same namespace, "/proc/<pid>/root" for another (a container). Unreadable
// namespace links (no privilege) count as the same namespace.
std::string namespace_root(const std::string& pid_dir) {
  static const std::string own = read_link("/proc/self/ns/mnt");
  const std::string theirs = read_link(pid_dir + "/ns/mnt");
  const bool foreign = !theirs.empty() && !own.empty() && theirs != own;
  return foreign ? pid_dir + "/root" : std::string();
}
}  // namespace

std::vector<std::string> mapped_libraries(const std::string& prefix, int pid) {
  std::set<std::string> found;
  std::vector<std::string> pids;
  if (pid > 0) {
    pids.push_back(std::to_string(pid));
  } else {
    std::unique_ptr<DIR, DirCloser> proc(opendir("/proc"));
    if (!proc) return {};
    while (const dirent* entry = readdir(proc.get())) {
      if (all_digits(entry->d_name)) pids.emplace_back(entry->d_name);
    }
  }
  for (const auto& p : pids) {
    const std::string pid_dir = "/proc/" + p;
    // Processes exit and some deny access while we look; both just contribute nothing.
    std::ifstream maps(pid_dir + "/maps");
    if (!maps) continue;
    std::optional<std::string> root;
    std::string line;
    while (std::getline(maps, line)) {
      const std::string_view path = maps_path(line);
      if (!path.starts_with('/') || path.ends_with(" (deleted)")) continue;
      const size_t slash = path.rfind('/');
      if (!path.substr(slash + 1).starts_with(prefix)) continue;
      if (!root) root = namespace_root(pid_dir);
      found.insert(*root + std::string(path));
    }
  }
  return {found.begin(), found.end()};
}

std::string process_executable(int pid) {
  const std::string pid_dir = "/proc/" + std::to_string(pid);
  const std::string exe = read_link(pid_dir + "/exe");
  if (exe.empty() || !exe.starts_with('/') || exe.ends_with(" (deleted)")) return "";
  return namespace_root(pid_dir) + exe;
}

}  // namespace ecapture::elf
