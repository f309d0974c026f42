// TargetSet: hooking, tracking and releasing the targets of one module.
#include "tls/target_set.h"

#include <fmt/ranges.h>
#include <unistd.h>

#include "core/clock.h"

namespace ecapture::tls {

Result<void> TargetSet::start(std::shared_ptr<TargetWatcher> watcher,
                              const std::vector<Target>& scanned, PidCleanup cleanup) {
  return start(
      std::move(watcher), [&scanned] { return scanned; }, std::move(cleanup));
}

Result<void> TargetSet::start(std::shared_ptr<TargetWatcher> watcher, const Scan& scan,
                              PidCleanup cleanup) {
  watcher_ = std::move(watcher);
  cleanup_ = std::move(cleanup);
  TargetWatcher::Subscriber s;
  s.on_file = [this](const FileEvent& ev) {
    // A tracked file's event needs no path (the process may have closed the fd and run on).
    return consider(ev.id, ev.path.empty() ? ev.host_path : ev.path, ev.host_path, {ev.pid});
  };
  s.on_fork = [this](int child, int parent) { on_fork(child, parent); };
  s.on_exit = [this](int pid) { on_exit(pid); };
  s.on_tick = [this] { tick(); };
  sub_ = watcher_->subscribe(std::move(s));
  for (const Target& t : scan()) {
    if (consider(t.id, t.path, t.host_path, t.pids)) {
      for (int pid : t.pids) watcher_->track(t.id, pid);
    }
    watcher_->mark_seen(t.id);
  }
  std::lock_guard lock(mu_);
  log_report(spdlog::level::info);
  started_ = true;
  return {};
}

void TargetSet::stop() {
  sub_.reset();
  watcher_.reset();
}

bool TargetSet::consider(const FileId& id, const std::string& path, const std::string& host_path,
                         const std::set<int>& pids) {
  std::lock_guard lock(mu_);
  if (rejected_.count(id) != 0) return false;
  if (auto it = entries_.find(id); it != entries_.end()) {
    it->second.pids.insert(pids.begin(), pids.end());
    it->second.release_at = 0;
    it->second.releasing = false;  // the watcher tracks it again: we return true
    return true;
  }
  if (host_path.empty()) return false;  // unreachable now: looked at again next time
  int slot = -1;
  for (int i = 0; i < kMaxSlots; ++i) {
    if (!slots_[i]) {
      slot = i;
      break;
    }
  }
  TargetPlan plan;
  try {
    plan = plan_(host_path, slot < 0 ? 0 : slot);
  } catch (const std::exception& ex) {
    // A file that makes the planner throw (it changed while being read) is not hooked; the
    // other targets still are.
    plan.kind = TargetPlan::Kind::kUnhookable;
    plan.reason = fmt::format("cannot be read: {}", ex.what());
  }
  if (plan.kind == TargetPlan::Kind::kNotTarget) {
    rejected_.insert(id);
    return false;
  }
  Entry e;
  e.key = next_key_++;
  e.path = path;
  e.host_path = host_path;
  e.pids = pids;
  if (plan.kind == TargetPlan::Kind::kHook && slot < 0) {
    plan.kind = TargetPlan::Kind::kUnhookable;
    plan.reason = fmt::format("more than {} libraries in use at once", kMaxSlots);
  }
  if (plan.kind == TargetPlan::Kind::kHook) {
    auto attached = session_.attach_group(e.key, plan.specs, attach_pid_, hint_);
    if (attached) {
      e.hooked = true;
      e.slot = slot;
      slots_[slot] = true;
      e.missing = attached->missing;
    } else {
      plan.kind = TargetPlan::Kind::kUnhookable;
      plan.reason = attached.error().to_string();
    }
  }
  e.plan = std::move(plan);
  const bool hooked = e.hooked;
  // Tracked either way: the exits of its processes keep the report (and releases) current.
  auto [it, inserted] = entries_.emplace(id, std::move(e));
  const Entry& added = it->second;
  if (hooked) {
    log_.debug("{}: hooked {} ({}), pid {}", module_, added.host_path,
               added.plan.info.value("version", std::string("version unknown")),
               fmt::join(added.pids, ","));
  } else {
    log_.debug("{}: cannot hook {}: {}", module_, added.host_path, added.plan.reason);
  }
  if (started_) log_report(spdlog::level::debug);
  return true;
}

void TargetSet::on_fork(int child, int parent) {
  std::lock_guard lock(mu_);
  for (auto& [id, e] : entries_) {
    if (e.pids.count(parent) != 0) e.pids.insert(child);
  }
}

void TargetSet::on_exit(int pid) {
  {
    std::lock_guard lock(mu_);
    const uint64_t now = monotonic_now_ns();
    for (auto& [id, e] : entries_) {
      if (e.pids.erase(pid) != 0 && e.pids.empty()) e.release_at = now + kGraceNs;
    }
  }
  if (cleanup_) cleanup_(pid);
}

void TargetSet::tick() {
  std::lock_guard lock(mu_);
  const uint64_t now = monotonic_now_ns();
  bool changed = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    Entry& e = it->second;
    if (e.release_at != 0 && now >= e.release_at) {
      if (!e.releasing) {
        // Phase one: from here a new user of the file is stopped and reported as new, while
        // the links stay; one that mapped it just before is still in the records the next
        // poll reads (this runs between polls) and cancels the release.
        watcher_->untrack(it->first);
        watcher_->forget(it->first);
        e.releasing = true;
        e.release_at = now + kReleaseSettleNs;
      } else {
        release(it);
        changed = true;
      }
    }
    it = next;
  }
  if (changed) log_report(spdlog::level::debug);
}

void TargetSet::release(std::map<FileId, Entry>::iterator it) {
  Entry& e = it->second;
  log_.debug("{}: released {} (no process uses it any more)", module_, e.host_path);
  if (e.hooked) {
    session_.detach_group(e.key);
    slots_[e.slot] = false;
  }
  entries_.erase(it);
}

nlohmann::json TargetSet::entry_json(const Entry& e) const {
  nlohmann::json j = e.plan.info;
  j["path"] = e.path;
  j["host_path"] = e.host_path;
  j["processes"] = e.pids.size();
  j["pids"] = e.pids;
  j["container"] = "";
  j["hooked"] = e.hooked;
  if (!e.hooked) j["reason"] = e.plan.reason;
  if (!e.missing.empty()) j["missing"] = e.missing;
  return j;
}

nlohmann::json TargetSet::report() const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, e] : entries_) out.push_back(entry_json(e));
  return out;
}

size_t TargetSet::hooked() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, e] : entries_) n += e.hooked ? 1 : 0;
  return n;
}

void TargetSet::log_report(spdlog::level::level_enum level) const {
  // Called with mu_ held or before the watcher delivers anything.
  if (entries_.empty()) {
    log_.log(level,
             "{}: no target in use yet; new processes and libraries are hooked as they "
             "appear",
             module_);
    return;
  }
  for (const auto& [id, e] : entries_) {
    const std::string where =
        e.path == e.host_path ? e.path : fmt::format("{} (from here {})", e.path, e.host_path);
    if (e.hooked) {
      log_.log(level, "{}: target {}: {}, {}, {} process{}", module_, where,
               e.plan.info.value("library", std::string("?")),
               e.plan.info.value("version", std::string("version unknown")), e.pids.size(),
               e.pids.size() == 1 ? "" : "es");
      if (auto keys = e.plan.info.find("keys");
          keys != e.plan.info.end() && !keys->get<std::string>().starts_with("not captured")) {
        log_.log(level, "{}: target {}: keys: {}", module_, e.path, keys->get<std::string>());
      }
    } else {
      log_.log(level, "{}: target {} cannot be hooked: {}", module_, where, e.plan.reason);
    }
  }
}

std::future<Result<std::shared_ptr<TargetWatcher>>> acquire_watcher_async(WatcherSettings s,
                                                                          spdlog::logger& log) {
  return std::async(std::launch::async, [s, &log] { return TargetWatcher::acquire(s, log); });
}

Result<std::unique_ptr<TargetSet>> start_host_wide(bpf::CaptureSession& session,
                                                   spdlog::logger& log,
                                                   std::shared_ptr<TargetWatcher> watcher,
                                                   HostWide hw) {
  for (const std::string& prefix : hw.prefixes) RETURN_IF_ERROR(watcher->add_prefix(prefix));
  auto set = std::make_unique<TargetSet>(session, log, hw.module, std::move(hw.plan),
                                         std::move(hw.hint), hw.attach_pid);
  // The scan runs after subscribing: what starts meanwhile is reported (and waits) too.
  RETURN_IF_ERROR(set->start(
      std::move(watcher), [] { return scan_targets(0, ::getpid()); },
      [&session, maps = std::move(hw.purge_maps)](int pid) {
        session.purge_process(maps, static_cast<uint32_t>(pid));
      }));
  return set;
}

}  // namespace ecapture::tls
