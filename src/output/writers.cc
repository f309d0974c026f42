// stdout, file (with rotation) and tcp writers.
#include "output/writers.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace ecapture {

WriterStats Writer::stats() const {
  WriterStats s;
  s.messages = messages_.load();
  s.bytes = bytes_.load();
  s.dropped = dropped_.load();
  s.dropped_bytes = dropped_bytes_.load();
  s.connects = connects_.load();
  return s;
}

// ---- stdout -----------------------------------------------------------------------------------

void StreamWriter::write(std::string_view bytes, bool /*binary*/) {
  std::lock_guard lock(mu_);
  std::fwrite(bytes.data(), 1, bytes.size(), out_);
  ++messages_;
  bytes_ += bytes.size();
}

void StreamWriter::flush() {
  std::lock_guard lock(mu_);
  std::fflush(out_);
}

// ---- file -------------------------------------------------------------------------------------

Result<std::unique_ptr<FileWriter>> FileWriter::open(const std::string& path, RotationOptions rot,
                                                     std::shared_ptr<spdlog::logger> log) {
  std::unique_ptr<FileWriter> w(new FileWriter(path, rot, std::move(log)));
  RETURN_IF_ERROR(w->open_file());
  return w;
}

FileWriter::~FileWriter() { close(); }

Result<void> FileWriter::open_file() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return make_errno_error(errno, "--eventaddr {}: cannot open", path_);
  struct stat st{};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  opened_ = std::chrono::steady_clock::now();
  return {};
}

void FileWriter::rotate() {
  ::close(fd_);
  fd_ = -1;
  // "<stem>-2006-01-02T15-04-05.000<ext>" next to the file.
  std::string dir, base = path_;
  if (auto slash = path_.rfind('/'); slash != std::string::npos) {
    dir = path_.substr(0, slash + 1);
    base = path_.substr(slash + 1);
  }
  std::string stem = base, ext;
  if (auto dot = base.rfind('.'); dot != std::string::npos && dot > 0) {
    stem = base.substr(0, dot);
    ext = base.substr(dot);
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm local{};
  localtime_r(&ts.tv_sec, &local);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%dT%H-%M-%S", &local);
  std::string backup = fmt::format("{}{}-{}.{:03}{}", dir, stem, when, ts.tv_nsec / 1000000, ext);
  for (int i = 1; ::access(backup.c_str(), F_OK) == 0; ++i) {
    backup = fmt::format("{}{}-{}.{:03}.{}{}", dir, stem, when, ts.tv_nsec / 1000000, i, ext);
  }
  ::rename(path_.c_str(), backup.c_str());
  ++rotations_;
  (void)open_file();
}

void FileWriter::write(std::string_view bytes, bool /*binary*/) {
  std::lock_guard lock(mu_);
  if (fd_ < 0) {
    ++dropped_;
    dropped_bytes_ += bytes.size();
    return;
  }
  bool by_size = rot_.max_bytes > 0 && size_ > 0 && size_ + bytes.size() > rot_.max_bytes;
  bool by_time = rot_.interval.count() > 0 && size_ > 0 &&
                 std::chrono::steady_clock::now() - opened_ >= rot_.interval;
  if (by_size || by_time) rotate();
  if (fd_ < 0) return;
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (done < bytes.size()) {
    // Whole messages only: a cut one would garble the file for every reader. Later messages
    // are still tried (space may come back) and counted as dropped while they fail.
    if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) == 0) done = 0;
    if (!write_failed_ && log_ != nullptr) {
      log_->error("--eventaddr {}: cannot write: {}; events to it are dropped while this lasts",
                  path_, std::strerror(err));
    }
    write_failed_ = true;
  }
  size_ += done;
  if (done == bytes.size()) {
    ++messages_;
    bytes_ += done;
  } else {
    ++dropped_;
    dropped_bytes_ += bytes.size() - done;
  }
}

void FileWriter::close() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// ---- queued (network) writers -----------------------------------------------------------------

void QueuedWriter::start() { thread_ = std::thread([this] { run(); }); }

void QueuedWriter::write(std::string_view bytes, bool binary) {
  {
    std::lock_guard lock(mu_);
    if (stop_.load() || queued_bytes_ + bytes.size() > max_queue_bytes_) {
      ++dropped_;
      dropped_bytes_ += bytes.size();
      return;
    }
    queue_.push_back(Item{std::string(bytes), binary});
    queued_bytes_ += bytes.size();
  }
  cv_.notify_one();
}

void QueuedWriter::close() {
  {
    std::lock_guard lock(mu_);
    if (stop_.load()) return;
    drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    stop_.store(true);
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (const auto& item : queue_) {
    ++dropped_;
    dropped_bytes_ += item.bytes.size();
  }
  queue_.clear();
  queued_bytes_ = 0;
}

void QueuedWriter::run() {
  bool linked = false;
  auto next_try = std::chrono::steady_clock::now();
  for (;;) {
    std::unique_lock lock(mu_);
    if (stop_.load() && (queue_.empty() || std::chrono::steady_clock::now() >= drain_deadline_ ||
                         !linked)) {
      break;
    }
    if (!linked) {
      lock.unlock();
      if (std::chrono::steady_clock::now() >= next_try) {
        linked = connect_link();
        if (linked) ++connects_;
        next_try = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
      lock.lock();
      if (!linked) {
        cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_.load(); });
        continue;
      }
    }
    cv_.wait_for(lock, std::chrono::milliseconds(200),
                 [&] { return !queue_.empty() || stop_.load(); });
    if (queue_.empty()) continue;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= item.bytes.size();
    lock.unlock();
    if (send_item(item)) {
      ++messages_;
      bytes_ += item.bytes.size();
    } else {
      ++dropped_;
      dropped_bytes_ += item.bytes.size();
      drop_link();
      linked = false;
    }
  }
  if (linked) drop_link();
}

// ---- tcp --------------------------------------------------------------------------------------

Result<ParsedUrl> parse_url(std::string_view url) {
  ParsedUrl u;
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return make_error("{}: not a URL (scheme://host:port)", url);
  u.scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string_view hostport = rest.substr(0, slash);
  size_t colon;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return make_error("{}: bad IPv6 host", url);
    u.host = std::string(hostport.substr(1, close - 1));
    colon = close + 1 < hostport.size() && hostport[close + 1] == ':' ? close + 1
                                                                       : std::string_view::npos;
  } else {
    colon = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, colon));
  }
  if (colon == std::string_view::npos || colon + 1 >= hostport.size()) {
    return make_error("{}: missing port (scheme://host:port)", url);
  }
  u.port = std::string(hostport.substr(colon + 1));
  for (char c : u.port) {
    if (c < '0' || c > '9') return make_error("{}: bad port '{}'", url, u.port);
  }
  if (u.host.empty()) return make_error("{}: missing host", url);
  return u;
}

Result<std::unique_ptr<TcpWriter>> TcpWriter::create(const std::string& url,
                                                     size_t max_queue_bytes) {
  ASSIGN_OR_RETURN(ParsedUrl u, parse_url(url));
  std::unique_ptr<TcpWriter> w(new TcpWriter(url, u.host, u.port, max_queue_bytes));
  w->start();
  return w;
}

TcpWriter::~TcpWriter() { close(); }

bool TcpWriter::connect_link() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res) != 0) return false;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof(err);
      if (::poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
          err == 0) {
        rc = 0;
      }
    }
    if (rc == 0) {
      fd_ = fd;
      freeaddrinfo(res);
      return true;
    }
    ::close(fd);
  }
  freeaddrinfo(res);
  return false;
}

bool TcpWriter::send_item(const Item& item) {
  size_t done = 0;
  while (done < item.bytes.size()) {
    ssize_t n = ::send(fd_, item.bytes.data() + done, item.bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The consumer is slow: wait, but give up on this link when we are asked to stop.
      pollfd p{fd_, POLLOUT, 0};
      int r = ::poll(&p, 1, 200);
      if (r < 0 && errno != EINTR) return false;
      if (r == 0 && stopping()) return false;
      if (r > 0 && (p.revents & (POLLERR | POLLHUP))) return false;
      continue;
    }
    return false;
  }
  return true;
}

void TcpWriter::drop_link() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace ecapture

namespace ecapture {

Result<std::unique_ptr<Writer>> make_writer(const std::string& addr, RotationOptions rot,
                                            std::shared_ptr<spdlog::logger> log) {
  constexpr size_t kQueueBytes = 16u << 20;
  if (addr.rfind("tcp://", 0) == 0) {
    if (rot.max_bytes || rot.interval.count()) {
      return make_error("--eventroratesize/--eventroratetime apply to a file --eventaddr, not {}",
                        addr);
    }
    ASSIGN_OR_RETURN(auto w, TcpWriter::create(addr, kQueueBytes));
    return std::unique_ptr<Writer>(std::move(w));
  }
  if (addr.rfind("ws://", 0) == 0 || addr.rfind("wss://", 0) == 0) {
    if (rot.max_bytes || rot.interval.count()) {
      return make_error("--eventroratesize/--eventroratetime apply to a file --eventaddr, not {}",
                        addr);
    }
    return make_ws_client_writer(addr, kQueueBytes);
  }
  if (addr.find("://") != std::string::npos) {
    return make_error("{}: unsupported address (use a file path, tcp://host:port or "
                      "ws://host:port/path)", addr);
  }
  ASSIGN_OR_RETURN(auto w, FileWriter::open(addr, rot, std::move(log)));
  return std::unique_ptr<Writer>(std::move(w));
}

}  // namespace ecapture
