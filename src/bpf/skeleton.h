// Opening and loading a module's BPF skeleton: the steps every module's object goes through, so
// that each module only adds its own read-only settings.
#pragma once

#include <bpf/libbpf.h>
#include <spdlog/logger.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "bpf/cgroup_filter.h"
#include "bpf/event_reader.h"
#include "bpf/libbpf_env.h"
#include "bpf/probe_spec.h"
#include "core/result.h"

namespace ecapture::bpf {

// What the read-only variables of common.bpf.h are set from.
struct SkeletonSettings {
  const char* what = "";        // the object's name for messages, e.g. "openssl"
  std::string btf_custom_path;  // --btf-file; "" for the running kernel's BTF
  uint32_t pid = 0;             // targ_tgid: 0 for every process
  uint32_t uid = 0;             // targ_uid: 0 for every user
  std::string cgroup_path;      // targ_cgroup + ecap_cgroup: "" for every cgroup
  uint64_t mapsize_pages = 1024;
  // The reader is woken once a quarter of the ring buffer is used (it also polls every 10 ms,
  // which keeps per-record wakeups off the traced program's path); true wakes it for every
  // record, for rare events that should show at once.
  bool wake_every_record = false;

  // No filter in the kernel: modules whose key probes must see every process (pcap mode, to
  // know the owner of each connection) apply --pid/--uid/--cgroup_path in user space.
  void every_process() {
    pid = uid = 0;
    cgroup_path.clear();
  }
};

// What the loaded skeleton runs on.
struct LoadedSkeleton {
  bool ringbuf = true;       // ring buffer (else perf buffer)
  bool uprobe_multi = true;  // uprobe_multi links (else one perf-event uprobe per probe)
};

// Opens a skeleton with `open` (the generated <name>__open_opts), sets the common read-only
// variables and the event map's size, lets `tweak(skel)` set the module's own (it returns
// Result<void>), and loads it with `load`. On failure the skeleton is destroyed with `destroy`
// and the error says what to do.
template <typename Skel, typename Open, typename Load, typename Destroy, typename Tweak>
Result<Skel*> open_and_load(const SkeletonSettings& s, spdlog::logger& log, Open open, Load load,
                            Destroy destroy, LoadedSkeleton* facts, Tweak&& tweak) {
  prepare_environment(log);
  facts->ringbuf = ringbuf_supported();
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!s.btf_custom_path.empty()) open_opts.btf_custom_path = s.btf_custom_path.c_str();
  Skel* skel = open(&open_opts);
  if (skel == nullptr) return make_errno_error(errno, "cannot open the {} BPF object", s.what);
  auto fail = [&](Error e) -> Result<Skel*> {
    destroy(skel);
    return e;
  };
  skel->rodata->targ_tgid = s.pid;
  skel->rodata->targ_uid = s.uid;
  skel->rodata->targ_cgroup = !s.cgroup_path.empty();
  skel->rodata->use_ringbuf = facts->ringbuf;
  RingSize ring;
  auto ring_bytes =
      configure_event_map(skel->maps.events, facts->ringbuf, s.mapsize_pages, &ring);
  if (!ring_bytes) return fail(std::move(ring_bytes).error());
  if (ring.capped) log_ring_capped(log, s.mapsize_pages, ring);
  if (auto r = apply_test_map_sizes(skel->obj); !r) return fail(std::move(r).error());
  skel->rodata->ringbuf_wakeup_bytes =
      s.wake_every_record ? (*ring_bytes > 0 ? 1 : 0) : *ring_bytes / 4;
  if (auto r = tweak(skel); !r) return fail(std::move(r).error());
  facts->uprobe_multi = uprobe_multi_supported();
  prepare_uprobe_programs(skel->obj, facts->uprobe_multi);
  if (int err = load(skel); err != 0) {
    return fail(make_errno_error(err, "cannot load the {} BPF programs (run as root, or with "
                                      "CAP_BPF and CAP_PERFMON; -d shows the verifier's log)",
                                 s.what));
  }
  if (!s.cgroup_path.empty()) {
    if (auto r = fill_cgroup_filter(skel->maps.ecap_cgroup, s.cgroup_path); !r) {
      return fail(std::move(r).error());
    }
  }
  return skel;
}

// The same, for objects with no read-only settings of their own.
template <typename Skel, typename Open, typename Load, typename Destroy>
Result<Skel*> open_and_load(const SkeletonSettings& s, spdlog::logger& log, Open open, Load load,
                            Destroy destroy, LoadedSkeleton* facts) {
  return open_and_load<Skel>(s, log, open, load, destroy, facts,
                             [](Skel*) -> Result<void> { return {}; });
}

}  // namespace ecapture::bpf
