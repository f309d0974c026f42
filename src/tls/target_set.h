// The targets of one TLS module in host-wide mode: per distinct file its probe links (a group of
// the module's session), its slot (a per-target index the module's BPF side keeps settings
// under, e.g. a key layout), the processes using it, and its report entry. A target whose
// processes have all exited is released after a grace period, so that the number of links stays
// bounded by the files in use.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "bpf/capture_session.h"
#include "bpf/probe_spec.h"
#include "tls/target_watcher.h"
#include "tls/targets.h"

namespace ecapture::tls {

// What a module makes of one file.
struct TargetPlan {
  enum class Kind { kNotTarget, kHook, kUnhookable };
  Kind kind = Kind::kNotTarget;
  std::vector<bpf::ProbeSpec> specs;               // kHook
  nlohmann::json info = nlohmann::json::object();  // report fields ("library", "version", ...)
  std::string reason;                              // kUnhookable: why
};

class TargetSet {
 public:
  // Decides about the file at `host_path` (reachable from here); `slot` is the target's slot.
  using Planner = std::function<TargetPlan(const std::string& host_path, int slot)>;
  // Frees what the module's BPF maps hold for an exited process.
  using PidCleanup = std::function<void(int pid)>;
  static constexpr int kMaxSlots = 64;
  static constexpr uint64_t kGraceNs = 1'000'000'000;
  // Between untracking a released file and detaching its links: at least one poll of the
  // watcher's records (every 10 ms) runs in between.
  static constexpr uint64_t kReleaseSettleNs = 50'000'000;

  TargetSet(bpf::CaptureSession& session, spdlog::logger& log, std::string module, Planner plan,
            std::string hint, int attach_pid)
      : session_(session),
        log_(log),
        module_(std::move(module)),
        plan_(std::move(plan)),
        hint_(std::move(hint)),
        attach_pid_(attach_pid) {}

  // Subscribes to the watcher (before the scan, so that nothing started in between is missed),
  // then hooks what the running processes use. Logs the report.
  Result<void> start(std::shared_ptr<TargetWatcher> watcher, const std::vector<Target>& scanned,
                     PidCleanup cleanup);
  // The same, with the scan run after subscribing: a process started while `scan` runs is
  // reported by the watcher or found by the scan, never missed by both.
  using Scan = std::function<std::vector<Target>()>;
  Result<void> start(std::shared_ptr<TargetWatcher> watcher, const Scan& scan,
                     PidCleanup cleanup);
  // Unsubscribes (waits for a callback in progress); links go with the session.
  void stop();
  nlohmann::json report() const;
  size_t hooked() const;

 private:
  struct Entry {
    uint64_t key = 0;
    std::string path, host_path;
    std::set<int> pids;
    int slot = -1;  // hooked targets only
    bool hooked = false;
    TargetPlan plan;
    std::vector<std::string> missing;
    uint64_t release_at = 0;  // 0: in use
    bool releasing = false;   // untracked, links still attached (see tick)
  };

  // True when `id` is a target (hooked or not): its processes are then tracked.
  bool consider(const FileId& id, const std::string& path, const std::string& host_path,
                const std::set<int>& pids);
  void on_fork(int child, int parent);
  void on_exit(int pid);
  void tick();
  void release(std::map<FileId, Entry>::iterator it);
  nlohmann::json entry_json(const Entry& e) const;
  void log_report(spdlog::level::level_enum level) const;

  bpf::CaptureSession& session_;
  spdlog::logger& log_;
  std::string module_;
  Planner plan_;
  std::string hint_;
  int attach_pid_;
  PidCleanup cleanup_;
  std::shared_ptr<TargetWatcher> watcher_;
  std::unique_ptr<TargetWatcher::Subscription> sub_;
  mutable std::mutex mu_;
  std::map<FileId, Entry> entries_;  // targets: hooked, or candidates that cannot be hooked
  std::set<FileId> rejected_;        // files that are not targets
  uint64_t next_key_ = 1;
  bool started_ = false;  // the start-up report was logged: changes are logged at debug
  std::vector<bool> slots_ = std::vector<bool>(kMaxSlots, false);
};

// The shared watcher, loaded on another thread (while the module loads its own BPF object).
std::future<Result<std::shared_ptr<TargetWatcher>>> acquire_watcher_async(WatcherSettings s,
                                                                          spdlog::logger& log);

// Host-wide mode of one module: `watcher` reports files whose names start with one of `prefixes`
// however they are mapped, and a TargetSet subscribes to it before the running processes are
// scanned. An exited process's entries in `purge_maps` (keys starting with its tgid) are removed.
struct HostWide {
  std::string module;
  std::vector<std::string> prefixes;
  TargetSet::Planner plan;
  std::string hint;
  int attach_pid = -1;
  std::vector<std::string> purge_maps;
};
Result<std::unique_ptr<TargetSet>> start_host_wide(bpf::CaptureSession& session,
                                                   spdlog::logger& log,
                                                   std::shared_ptr<TargetWatcher> watcher,
                                                   HostWide hw);

}  // namespace ecapture::tls
