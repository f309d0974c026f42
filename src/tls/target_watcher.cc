// TargetWatcher: the shared watcher's kernel side, reader thread and subscribers.
#include "tls/target_watcher.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

#include "bpf/handles.h"
#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "core/clock.h"
#include "ecap_abi.h"
#include "watch.skel.h"
#include "watch_abi.h"

namespace ecapture::tls {
namespace {

// A stopped process whose event did not arrive (lost) is resumed after this long.
constexpr uint64_t kLostPauseNs = 2'000'000'000;
constexpr uint64_t kSweepNs = 200'000'000;

std::string read_link(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool same_file(const std::string& path, const FileId& id) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == id.dev &&
         static_cast<uint64_t>(st.st_ino) == id.ino;
}

// Where the process sees the file and a path to it from here: its own path when that is the same
// file here (same mount namespace), else through /proc/<pid>/root, else the magic link itself
// (/proc/<pid>/fd/<n> or /proc/<pid>/exe), valid while the process lives.
void locate(FileEvent& ev, const std::string& link) {
  ev.path = read_link(link);
  if (ev.path.ends_with(" (deleted)")) ev.path.clear();
  const std::string root = "/proc/" + std::to_string(ev.pid) + "/root";
  for (const std::string& p : {ev.path, root + ev.path, link}) {
    if ((p == link || !ev.path.empty()) && same_file(p, ev.id)) {
      ev.host_path = p;
      return;
    }
  }
}

std::mutex g_mu;
std::weak_ptr<TargetWatcher> g_watcher;

watch_file_key kernel_key(const FileId& id) { return {user_dev_to_kernel(id.dev), id.ino}; }

// SIGCONT to every process in the kernel's `paused` map (pid -> when), deleting its entry.
// Async-signal-safe: also runs in the guard, a child of a multi-threaded process.
void resume_all_paused(int map_fd) {
  uint32_t pid = 0;
  // Always from the first key: each entry is deleted once its process is resumed.
  while (bpf_map_get_next_key(map_fd, nullptr, &pid) == 0) {
    ::kill(static_cast<pid_t>(pid), SIGCONT);
    if (bpf_map_delete_elem(map_fd, &pid) != 0) break;
  }
}

// The guard: a child that holds only the `paused` map and the read end of a pipe whose write end
// only ecapture holds. However ecapture ends (SIGKILL included), the pipe reports end-of-file and
// the guard resumes whatever the kernel stopped and nobody resumed, then exits. Returns its pid
// and the write end, or {-1, -1} when it could not start (then only a normal exit resumes).
std::pair<pid_t, int> start_guard(int paused_fd) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return {-1, -1};
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return {-1, -1};
  }
  if (child == 0) {
    // Keep the map (as fd 3) and the pipe's read end (fd 4) only: a copy of a BPF link or of
    // the ring buffer would keep them alive after ecapture.
    const int map_fd = ::fcntl(paused_fd, F_DUPFD, 100);
    const int rd = ::fcntl(pipe_fds[0], F_DUPFD, 101);
    if (map_fd < 0 || rd < 0 || ::dup2(map_fd, 3) < 0 || ::dup2(rd, 4) < 0) ::_exit(1);
    ::syscall(SYS_close_range, 5U, ~0U, 0U);
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the whole process group: ecapture handles it
    ::signal(SIGTERM, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    ::prctl(PR_SET_NAME, "ecapture-guard");
    char c;
    while (::read(4, &c, 1) < 0 && errno == EINTR) {
    }
    // ecapture is gone; its links close with its files, a stop may still be on its way.
    resume_all_paused(3);
    struct timespec pause = {0, 200'000'000};
    ::nanosleep(&pause, nullptr);
    resume_all_paused(3);
    ::_exit(0);
  }
  ::close(pipe_fds[0]);
  return {child, pipe_fds[1]};
}

}  // namespace

TargetWatcher::Subscription::~Subscription() {
  {
    std::lock_guard lock(watcher_->mu_);
    watcher_->subscribers_.erase(it_);
  }
  std::lock_guard lock(g_mu);  // the last user stops the watcher, not a concurrent acquire
  watcher_.reset();
}

Result<std::shared_ptr<TargetWatcher>> TargetWatcher::acquire(const WatcherSettings& s,
                                                              spdlog::logger& log) {
  std::lock_guard lock(g_mu);
  if (auto w = g_watcher.lock()) return w;
  std::shared_ptr<TargetWatcher> w(new TargetWatcher(log));
  RETURN_IF_ERROR(w->start(s));
  g_watcher = w;
  return w;
}

Result<void> TargetWatcher::start(const WatcherSettings& s) {
  bpf::SkeletonSettings settings;
  settings.what = "watch";
  settings.btf_custom_path = s.btf_custom_path;
  settings.pid = s.pid;
  settings.uid = s.uid;
  settings.mapsize_pages = 16;
  settings.wake_every_record = true;  // a stopped process waits for its record
  bpf::LoadedSkeleton facts;
  const char* no_pause = std::getenv("ECAPTURE_NO_PAUSE");
  ASSIGN_OR_RETURN(skel_, (bpf::open_and_load<watch_bpf>(
                              settings, log_, watch_bpf__open_opts, watch_bpf__load,
                              watch_bpf__destroy, &facts, [&](watch_bpf* sk) -> Result<void> {
                                sk->rodata->self_tgid = static_cast<uint32_t>(::getpid());
                                sk->rodata->pause_new =
                                    no_pause == nullptr || std::strcmp(no_pause, "1") != 0;
                                return {};
                              })));
  auto reader = bpf::EventReader::create(
      skel_->maps.events, facts.ringbuf, settings.mapsize_pages,
      [this](std::span<const uint8_t> r) { return handle(r); }, [this] { tick(); });
  if (!reader) return std::move(reader).error();
  reader_ = std::move(reader).value();
  reader_->on_record_error([this](const Error& e, uint64_t count) {
    if (count == 1) log_.warn("watch: a record could not be decoded: {}", e.to_string());
  });
  // The guard first: no process is stopped before something is sure to resume it.
  std::tie(guard_pid_, guard_fd_) = start_guard(bpf_map__fd(skel_->maps.paused));
  if (guard_pid_ < 0)
    log_.warn(
        "watch: no guard process (fork failed): a SIGKILLed ecapture "
        "could leave a process it paused stopped");
  ASSIGN_OR_RETURN(auto links, bpf::attach_tracepoints(skel_->obj));
  links_ = std::move(links);
  reader_->start();
  return {};
}

TargetWatcher::~TargetWatcher() {
  bpf::destroy_links(links_);    // no new stops from here on
  if (reader_) reader_->stop();  // the records still queued resume their processes
  // Whatever is still stopped (a record lost): never leave a process stopped.
  if (skel_ != nullptr) resume_all_paused(bpf_map__fd(skel_->maps.paused));
  if (guard_fd_ >= 0) ::close(guard_fd_);  // the guard finds nothing left and exits
  if (guard_pid_ > 0) {
    while (::waitpid(guard_pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  reader_.reset();
  if (skel_ != nullptr) watch_bpf__destroy(skel_);
}

std::unique_ptr<TargetWatcher::Subscription> TargetWatcher::subscribe(Subscriber s) {
  std::lock_guard lock(mu_);
  auto it = subscribers_.insert(subscribers_.end(), std::move(s));
  return std::make_unique<Subscription>(shared_from_this(), it);
}

Result<void> TargetWatcher::add_prefix(const std::string& prefix) {
  std::lock_guard lock(mu_);
  if (std::find(prefixes_.begin(), prefixes_.end(), prefix) != prefixes_.end()) return {};
  if (prefixes_.size() >= WATCH_MAX_PREFIXES || prefix.empty() ||
      prefix.size() >= WATCH_PREFIX_LEN) {
    return make_error("watch: cannot add the name prefix '{}' (at most {} of {} bytes)", prefix,
                      WATCH_MAX_PREFIXES, WATCH_PREFIX_LEN - 1);
  }
  char value[WATCH_PREFIX_LEN] = {};
  std::memcpy(value, prefix.data(), prefix.size());
  uint32_t slot = static_cast<uint32_t>(prefixes_.size());
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.prefixes), &slot, value, BPF_ANY) != 0) {
    return make_errno_error(errno, "watch: cannot set the name prefix '{}'", prefix);
  }
  prefixes_.push_back(prefix);
  return {};
}

void TargetWatcher::mark_seen(const FileId& id) {
  const watch_file_key key = kernel_key(id);
  const uint8_t one = 1;
  bpf_map_update_elem(bpf_map__fd(skel_->maps.seen), &key, &one, BPF_ANY);
}

void TargetWatcher::forget(const FileId& id) {
  const watch_file_key key = kernel_key(id);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.seen), &key);
}

void TargetWatcher::track(const FileId& id, int pid) {
  const watch_file_key key = kernel_key(id);
  const uint8_t one = 1;
  bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked), &key, &one, BPF_ANY);
  watch_pid(pid);
}

void TargetWatcher::untrack(const FileId& id) {
  const watch_file_key key = kernel_key(id);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.tracked), &key);
}

void TargetWatcher::watch_pid(int pid) {
  const uint32_t key = static_cast<uint32_t>(pid);
  const uint8_t one = 1;
  bpf_map_update_elem(bpf_map__fd(skel_->maps.watched_pids), &key, &one, BPF_ANY);
}

uint64_t TargetWatcher::lost() const {
  return bpf::lost_records(skel_->maps.ecap_counters, reader_.get());
}

void TargetWatcher::resume(int pid) {
  const uint32_t key = static_cast<uint32_t>(pid);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.paused), &key);
  ::kill(pid, SIGCONT);
}

Result<void> TargetWatcher::handle(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(auto e, bpf::read_struct<watch_event>(record, "watch event"));
  const int pid = static_cast<int>(e.pid);
  std::lock_guard lock(mu_);
  switch (e.kind) {
    case WATCH_MAP:
    case WATCH_EXEC: {
      FileEvent ev;
      ev.pid = pid;
      ev.id = {kernel_dev_to_user(e.file.dev), e.file.ino};
      ev.name.assign(e.name, strnlen(e.name, sizeof(e.name)));
      ev.exec = e.kind == WATCH_EXEC;
      ev.tracked = e.tracked != 0;
      locate(ev,
             ev.exec ? fmt::format("/proc/{}/exe", pid) : fmt::format("/proc/{}/fd/{}", pid, e.fd));
      bool tracked = false;
      for (auto& s : subscribers_) {
        if (s.on_file && s.on_file(ev)) tracked = true;
      }
      // A file nobody could reach (the process is gone) is looked at again next time.
      if (!ev.host_path.empty() || tracked) mark_seen(ev.id);
      if (tracked) track(ev.id, pid);
      break;
    }
    case WATCH_FORK:
      for (auto& s : subscribers_) {
        if (s.on_fork) s.on_fork(pid, static_cast<int>(e.parent));
      }
      break;
    case WATCH_EXIT:
      for (auto& s : subscribers_) {
        if (s.on_exit) s.on_exit(pid);
      }
      break;
    default:
      return make_error("watch: unknown record kind {}", e.kind);
  }
  if (e.paused) resume(pid);  // exactly once, after every subscriber has hooked what it wants
  return {};
}

void TargetWatcher::tick() {
  {
    std::lock_guard lock(mu_);
    for (auto& s : subscribers_) {
      if (s.on_tick) s.on_tick();
    }
  }
  const uint64_t now = monotonic_now_ns();
  if (now < last_sweep_ns_ + kSweepNs) return;
  last_sweep_ns_ = now;
  const int fd = bpf_map__fd(skel_->maps.paused);
  uint32_t key = 0, next = 0;
  std::vector<uint32_t> stale;
  for (const uint32_t* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
    uint64_t since = 0;
    if (bpf_map_lookup_elem(fd, &next, &since) == 0 && now > since + kLostPauseNs) {
      stale.push_back(next);
    }
    key = next;
  }
  for (uint32_t pid : stale) {
    log_.warn("watch: resuming pid {}, whose record was lost (its new files may not be hooked)",
              pid);
    resume(static_cast<int>(pid));
  }
}

}  // namespace ecapture::tls
