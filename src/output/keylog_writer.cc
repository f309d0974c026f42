// Key log file writer.
#include "output/keylog_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

namespace ecapture {

std::string to_hex(std::span<const uint8_t> bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}


Result<std::unique_ptr<KeylogWriter>> KeylogWriter::open(const std::string& path) {
  bool created = false;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    created = true;
  } else if (errno == EEXIST) {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) return make_errno_error(errno, "cannot open key log file {}", path);
  auto w = std::unique_ptr<KeylogWriter>(new KeylogWriter(path, fd));
  w->created_ = created;
  return w;
}

void KeylogWriter::discard_if_unused() {
  std::lock_guard lock(mu_);
  if (!created_ || written_ > 0) return;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size == 0) ::unlink(path_.c_str());
  created_ = false;
}

KeylogWriter::~KeylogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Result<bool> KeylogWriter::write(const std::string& label, const std::string& client_random_hex,
                                 const std::string& secret_hex) {
  std::lock_guard lock(mu_);
  if (failed_) return false;
  if (!seen_.insert(label + " " + client_random_hex).second) return false;
  std::string line = label + " " + client_random_hex + " " + secret_hex + "\n";
  struct stat st {};
  const off_t whole = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      // A cut line would make Wireshark reject the whole file: end it at the last whole one.
      if (off > 0 && whole >= 0 && ::ftruncate(fd_, whole) != 0) {
      }
      failed_ = true;
      return make_errno_error(err, "cannot write key log file {}", path_);
    }
    off += static_cast<size_t>(n);
  }
  ++written_;
  return true;
}

}  // namespace ecapture
