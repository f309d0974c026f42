// The one watcher of new processes and libraries per ecapture process (bpf/watch.bpf.c), shared
// by every TLS module of a runner: it reports files that processes map or execute for the first
// time, stopping the process until every subscriber has hooked what it wants (then one SIGCONT),
// and the forks and exits of processes that use a tracked file.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "core/result.h"
#include "tls/targets.h"

struct watch_bpf;

namespace ecapture::tls {

// A file a process maps (or executes) that was not decided yet, or a tracked one.
struct FileEvent {
  int pid = 0;
  FileId id;              // stat() identity
  std::string name;       // dentry name (from the kernel)
  std::string path;       // as the process sees it ("" when unknown)
  std::string host_path;  // from here ("" when the process is gone)
  bool exec = false;      // the process's executable (else a mapped file)
  bool tracked = false;   // a file some subscriber tracks
};

struct WatcherSettings {
  uint32_t pid = 0;  // --pid: only this process
  uint32_t uid = 0;  // --uid
  std::string btf_custom_path;
};

class TargetWatcher : public std::enable_shared_from_this<TargetWatcher> {
 public:
  struct Subscriber {
    // Called on the watcher's thread, in subscription order, while the process is stopped.
    // Returns true when the subscriber tracks the file (its mappings and its processes' forks
    // and exits are reported from then on).
    std::function<bool(const FileEvent&)> on_file;
    std::function<void(int child, int parent)> on_fork;
    std::function<void(int pid)> on_exit;
    std::function<void()> on_tick;  // about every 10 ms on the watcher's thread
  };

  // Unsubscribes on destruction (waiting for a callback in progress).
  class Subscription {
   public:
    Subscription(std::shared_ptr<TargetWatcher> w, std::list<Subscriber>::iterator it)
        : watcher_(std::move(w)), it_(it) {}
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    TargetWatcher& watcher() const { return *watcher_; }

   private:
    std::shared_ptr<TargetWatcher> watcher_;
    std::list<Subscriber>::iterator it_;
  };

  // The process's watcher: started on first use, stopped when the last user lets it go.
  static Result<std::shared_ptr<TargetWatcher>> acquire(const WatcherSettings& s,
                                                        spdlog::logger& log);
  ~TargetWatcher();
  TargetWatcher(const TargetWatcher&) = delete;
  TargetWatcher& operator=(const TargetWatcher&) = delete;

  std::unique_ptr<Subscription> subscribe(Subscriber s);
  // Files whose names start with `prefix` are reported however they are mapped.
  Result<void> add_prefix(const std::string& prefix);
  // Decided: not reported again (unless tracked).
  void mark_seen(const FileId& id);
  // Reported again on its next mapping (a released target).
  void forget(const FileId& id);
  // Every mapping of `id` is reported, and `pid`'s forks and exit.
  void track(const FileId& id, int pid);
  void untrack(const FileId& id);
  void watch_pid(int pid);
  // Records the kernel could not deliver.
  uint64_t lost() const;

 private:
  TargetWatcher(spdlog::logger& log) : log_(log) {}
  Result<void> start(const WatcherSettings& s);
  Result<void> handle(std::span<const uint8_t> record);
  void tick();
  void resume(int pid);

  spdlog::logger& log_;
  watch_bpf* skel_ = nullptr;
  std::vector<bpf::Link> links_;
  std::unique_ptr<bpf::EventReader> reader_;
  int guard_pid_ = -1;  // resumes what we paused if we die without doing it (SIGKILL)
  int guard_fd_ = -1;   // the write end of its pipe
  std::mutex mu_;       // subscribers_, paused_
  std::list<Subscriber> subscribers_;
  std::set<int> paused_;  // stopped by the kernel, not resumed yet
  std::vector<std::string> prefixes_;
  uint64_t last_sweep_ns_ = 0;
};

}  // namespace ecapture::tls
