// One module's kernel side, written once for every module: it owns the loaded BPF object, its
// links and the reader of its `events` map, keeps the module's lost / decode-error / failed
// map-update counters current, and stops in the order that loses nothing (detach, then drain).
#pragma once

#include <bpf/libbpf.h>
#include <spdlog/logger.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "bpf/probe_spec.h"
#include "bpf/skeleton.h"
#include "core/module.h"
#include "core/result.h"

namespace ecapture::bpf {

class CaptureSession {
 public:
  CaptureSession() = default;
  ~CaptureSession() { close(); }
  CaptureSession(const CaptureSession&) = delete;
  CaptureSession& operator=(const CaptureSession&) = delete;

  // Where the counters go and what prefixes the session's log lines ("tls", "mysqld", ...).
  void bind(ModuleCounters* counters, spdlog::logger* log, std::string what) {
    counters_ = counters;
    log_ = log;
    what_ = std::move(what);
  }

  // Opens, configures and loads a skeleton (bpf::open_and_load; `tweak(skel)` sets the module's
  // own read-only settings); the session owns it from here on.
  template <typename Skel, typename Open, typename Load, typename Destroy, typename Tweak>
  Result<Skel*> load(SkeletonSettings s, Open open_fn, Load load_fn, Destroy destroy_fn,
                     Tweak&& tweak) {
    s.what = what_.c_str();
    ASSIGN_OR_RETURN(Skel * skel, open_and_load<Skel>(s, *log_, open_fn, load_fn, destroy_fn,
                                                      &loaded_, std::forward<Tweak>(tweak)));
    own(skel->obj, [skel, destroy_fn] { destroy_fn(skel); }, s.mapsize_pages);
    return skel;
  }
  template <typename Skel, typename Open, typename Load, typename Destroy>
  Result<Skel*> load(SkeletonSettings s, Open open_fn, Load load_fn, Destroy destroy_fn) {
    return load<Skel>(std::move(s), open_fn, load_fn, destroy_fn,
                      [](Skel*) -> Result<void> { return {}; });
  }
  const LoadedSkeleton& loaded() const { return loaded_; }

  // Attaches the object's tracepoint programs, then the uprobes of `specs` (pid -1: every
  // process). Returns what was attached and which optional symbols were missing.
  Result<AttachResult> attach(const std::vector<ProbeSpec>& specs, int pid,
                              const std::string& hint);
  // Attaches the uprobes of one target apart from the others (`key` names it), so that it can
  // be detached alone while the capture runs; thread-safe. Refused after stop.
  Result<AttachResult> attach_group(uint64_t key, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint);
  void detach_group(uint64_t key);
  // Deletes the entries of process `tgid` from the named maps, whose keys start with the tgid
  // (an exited process's per-connection state). Returns how many went.
  size_t purge_process(const std::vector<std::string>& maps, uint32_t tgid);
  // Starts reading `events`. A record the handler refuses is a decode error (the first is
  // logged); a failing poll calls `on_fail` (the module reports it to the runner).
  Result<void> start_reader(EventReader::Handler handler, EventReader::Tick tick,
                            std::function<void(const Error&)> on_fail);
  // Detaches every probe, then drains what the kernel already produced; counters are final.
  void stop();
  // Releases links, reader and object (after stop, or after a start that failed half way).
  void close();
  // Reads the kernel-side counters into the module's (also every second while reading).
  void refresh_counters();

  bpf_object* object() const { return obj_; }
  size_t links() const;

 private:
  void detach_all();
  void own(bpf_object* obj, std::function<void()> destroy, uint64_t mapsize_pages);

  ModuleCounters* counters_ = nullptr;
  spdlog::logger* log_ = nullptr;
  std::string what_;
  bpf_object* obj_ = nullptr;
  std::function<void()> destroy_;
  uint64_t mapsize_pages_ = 0;
  LoadedSkeleton loaded_;
  std::vector<Link> links_;
  std::vector<std::string> probed_;  // distinct files with uprobes
  mutable std::mutex groups_mu_;
  std::map<uint64_t, std::vector<Link>> groups_;  // attach_group
  bool detached_ = false;                         // stop() ran: no new groups
  std::unique_ptr<EventReader> reader_;
  uint64_t last_refresh_ns_ = 0;
};

}  // namespace ecapture::bpf
