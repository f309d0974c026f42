// The --har file: temporary file + rename.
#include "web/har_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "web/har.h"

namespace ecapture::web {

Result<std::unique_ptr<HarFile>> HarFile::create(const std::string& path) {
  if (path.empty()) return make_error("--har needs a file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    return make_error("--har {}: the file exists; ecapture never overwrites a capture, choose "
                      "another name or remove it",
                      path);
  }
  std::unique_ptr<HarFile> h(new HarFile());
  h->path_ = path;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) return make_error("--har {}: is a directory, give a file name", path);
  h->temp_ = fmt::format("{}.{}.ecapture-{}.tmp", dir, base, ::getpid());
  int fd = ::open(h->temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_errno_error(errno, "--har {}: cannot create {}", path, h->temp_);
  h->f_ = ::fdopen(fd, "w");
  if (h->f_ == nullptr) {
    int err = errno;
    ::close(fd);
    ::unlink(h->temp_.c_str());
    return make_errno_error(err, "--har {}", path);
  }
  std::string head = har_header();
  std::fwrite(head.data(), 1, head.size(), h->f_);
  return h;
}

HarFile::~HarFile() { discard(); }

void HarFile::add(const Row& row) {
  if (f_ == nullptr) return;
  nlohmann::json e = har_entry(row);
  if (e.is_null()) return;
  std::string text = e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (entries_ > 0) std::fputc(',', f_);
  std::fputc('\n', f_);
  if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) failed_ = true;
  ++entries_;
}

Result<void> HarFile::commit() {
  if (f_ == nullptr) return {};
  std::string foot = "\n" + har_footer();
  std::fwrite(foot.data(), 1, foot.size(), f_);
  bool ok = std::fflush(f_) == 0 && ::fsync(::fileno(f_)) == 0 && !failed_;
  int err = errno;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) {
    ::unlink(temp_.c_str());
    return make_errno_error(err, "--har {}: cannot write", path_);
  }
  // RENAME_NOREPLACE: a file created at FILE since start-up is not overwritten either.
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) != 0) {
    err = errno;
    ::unlink(temp_.c_str());
    return make_errno_error(err, "--har {}: cannot rename {} to it", path_, temp_);
  }
  return {};
}

void HarFile::discard() {
  if (f_ == nullptr) return;
  std::fclose(f_);
  f_ = nullptr;
  ::unlink(temp_.c_str());
}

}  // namespace ecapture::web
