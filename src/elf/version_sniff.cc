// Finds OpenSSL / BoringSSL version strings by scanning a binary's bytes in overlapping chunks.
#include "elf/version_sniff.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include <fmt/ranges.h>

#include "elf/elf_file.h"
#include "elf/lib_discovery.h"

namespace ecapture::elf {
namespace {

constexpr std::string_view kOpenSslTag = "OpenSSL ";
constexpr std::string_view kBoringSslMarker = "BoringSSL";
constexpr std::string_view kBoringSslCompat = "(compatible; BoringSSL)";
// The raw text is cut at the first unprintable byte (normally the string's NUL) or here.
constexpr size_t kMaxRawLength = 128;
// Consecutive reads overlap by this much, so any match (tag + raw text) is whole in one buffer.
constexpr size_t kOverlap = 256;
static_assert(kOverlap >= kMaxRawLength + kBoringSslMarker.size());
// Big enough that the scan of a 100 MB binary is a few hundred reads.
constexpr size_t kDefaultChunkSize = size_t{1} << 20;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_printable(char c) { return c >= 0x20 && c < 0x7f; }

// Length of a `\d\.\d+\.\d+[a-z]*(-(alpha|beta|pre|dev)\d*)?` prefix of `s`, or 0 when `s`
// does not start with one.
size_t version_length(std::string_view s) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    return i > start;
  };
  if (i >= s.size() || !is_digit(s[i])) return 0;
  ++i;
  if (i >= s.size() || s[i] != '.') return 0;
  ++i;
  if (!digits()) return 0;
  if (i >= s.size() || s[i] != '.') return 0;
  ++i;
  if (!digits()) return 0;
  while (i < s.size() && is_lower(s[i])) ++i;
  // Pre-releases ("3.6.0-beta1", "3.0.0-alpha17", "1.1.0-pre6", "3.4.0-dev") keep their suffix, so
  // that they are reported as they are and never taken for the release; "-fips" is a build name.
  for (std::string_view tag : {"-alpha", "-beta", "-pre", "-dev"}) {
    if (s.substr(i, tag.size()) != tag) continue;
    size_t j = i + tag.size();
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j < s.size() && is_lower(s[j])) break;  // a longer word, not a pre-release tag
    return j;
  }
  return i;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return memmem(haystack.data(), haystack.size(), needle.data(), needle.size()) != nullptr;
}

// Accumulates what has been seen across chunks; `scan` may be fed overlapping buffers.
class Scanner {
 public:
  // Looks for a version string starting before `limit` in `buf` (later starts are left for the
  // next buffer, which repeats the overlap). Returns true once the answer is final.
  bool scan(std::string_view buf, size_t limit) {
    if (!saw_boring_marker_) saw_boring_marker_ = contains(buf, kBoringSslMarker);
    size_t from = 0;
    while (from < limit) {
      const void* hit =
          memmem(buf.data() + from, buf.size() - from, kOpenSslTag.data(), kOpenSslTag.size());
      if (hit == nullptr) return false;
      const size_t at = static_cast<const char*>(hit) - buf.data();
      if (at >= limit) return false;
      if (accept(buf.substr(at))) return true;
      from = at + 1;
    }
    return false;
  }

  std::optional<SslVersion> result() const {
    if (found_) return found_;
    if (!saw_boring_marker_) return std::nullopt;
    SslVersion boring;
    boring.flavor = SslFlavor::kBoringSsl;
    boring.raw = std::string(kBoringSslMarker);
    return boring;
  }

 private:
  // `text` starts with the tag; records it when the tag is followed by a version.
  bool accept(std::string_view text) {
    size_t end = 0;
    while (end < text.size() && end < kMaxRawLength && is_printable(text[end])) ++end;
    const std::string_view raw = text.substr(0, end);
    const std::string_view tail = raw.substr(kOpenSslTag.size());
    const size_t length = version_length(tail);
    if (length == 0) return false;
    SslVersion version;
    version.raw = std::string(raw);
    // BoringSSL reports a fixed OpenSSL version for compatibility; the number means nothing.
    if (contains(raw, kBoringSslCompat)) {
      version.flavor = SslFlavor::kBoringSsl;
    } else {
      version.version = std::string(tail.substr(0, length));
    }
    found_ = std::move(version);
    return true;
  }

  std::optional<SslVersion> found_;
  bool saw_boring_marker_ = false;
};

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string SslVersion::display() const {
  if (flavor == SslFlavor::kBoringSsl) return "BoringSSL";
  if (version.empty()) return "OpenSSL";
  return "OpenSSL " + version;
}

std::optional<SslVersion> sniff_ssl_version_in_bytes(std::string_view bytes) {
  Scanner scanner;
  scanner.scan(bytes, bytes.size());
  return scanner.result();
}

Result<std::optional<SslVersion>> sniff_ssl_version_in(const std::string& path) {
  return sniff_ssl_version_in(path, kDefaultChunkSize);
}

Result<std::optional<SslVersion>> sniff_ssl_version_in(const std::string& path, size_t chunk_size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return make_error("cannot read {}: no such file", path);
    return make_errno_error(errno, "cannot read {}", path);
  }
  if (!S_ISREG(st.st_mode)) return make_error("cannot read {}: not a regular file", path);
  RETURN_IF_ERROR(check_elf_size(path, static_cast<uint64_t>(st.st_size)));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "cannot open {}", path);
  FdCloser closer(fd);

  // Chunked reads rather than mmap: a library replaced while we scan cannot SIGBUS us.
  std::vector<char> buffer(std::max<size_t>(chunk_size, 1) + kOverlap);
  size_t filled = 0;
  Scanner scanner;
  for (bool eof = false; !eof;) {
    while (filled < buffer.size()) {
      const ssize_t got = ::read(fd, buffer.data() + filled, buffer.size() - filled);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return make_errno_error(errno, "cannot read {}", path);
      if (got == 0) {
        eof = true;
        break;
      }
      filled += static_cast<size_t>(got);
    }
    const size_t limit = eof ? filled : filled - kOverlap;
    if (scanner.scan(std::string_view(buffer.data(), filled), limit)) break;
    std::memmove(buffer.data(), buffer.data() + limit, filled - limit);
    filled -= limit;
  }
  std::optional<SslVersion> found = scanner.result();
  if (found) found->source_path = path;
  return found;
}

Result<SslVersion> detect_ssl_version(const std::string& libssl_path) {
  ASSIGN_OR_RETURN(std::optional<SslVersion> own, sniff_ssl_version_in(libssl_path));
  if (own) return *std::move(own);

  std::vector<std::string> searched{libssl_path};
  auto elf_file = ElfFile::open(libssl_path);
  if (!elf_file.ok()) {
    return make_error(
        "no OpenSSL/BoringSSL version string in {} and cannot read its libcrypto "
        "dependency ({}); pass the version with --ssl_version",
        libssl_path, elf_file.error().to_string());
  }
  // OpenSSL 3 keeps its version string only in libcrypto.
  const std::filesystem::path directory = std::filesystem::path(libssl_path).parent_path();
  for (const std::string& name : (*elf_file)->needed()) {
    if (!name.starts_with("libcrypto")) continue;
    std::string crypto_path = (directory / name).string();
    if (!is_regular_file(crypto_path)) {
      auto found = find_library({name});
      if (!found.ok()) {
        searched.push_back(name + " (not found next to it nor on the loader path)");
        continue;
      }
      crypto_path = *std::move(found);
    }
    searched.push_back(crypto_path);
    ASSIGN_OR_RETURN(std::optional<SslVersion> crypto, sniff_ssl_version_in(crypto_path));
    if (crypto) return *std::move(crypto);
  }
  return make_error(
      "no OpenSSL/BoringSSL version string in {}; pass the version with "
      "--ssl_version",
      fmt::join(searched, ", "));
}

}  // namespace ecapture::elf
