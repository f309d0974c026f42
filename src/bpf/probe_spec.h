// Probes are data: a module lists what to attach, one attacher walks the list.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "core/result.h"

namespace ecapture::bpf {

// kUprobeSession: one program runs at the entry and, if the entry returned 0, at the return
// (bpf_session_is_return() tells which); needs uprobe_session_supported().
enum class ProbeType { kUprobe, kUretprobe, kUprobeSession };

struct ProbeSpec {
  std::string binary;   // file to probe
  std::string symbol;   // function name (may be versioned, "SSL_write@@OPENSSL_3.0.0")
  uint64_t offset = 0;  // file offset; used when `symbol` is empty
  std::string program;  // BPF program name in the object
  ProbeType type = ProbeType::kUprobe;
  bool optional = false;  // missing symbol: note it and go on
  uint64_t cookie = 0;    // bpf_get_attach_cookie() in the program
};

struct AttachResult {
  std::vector<Link> links;
  std::vector<std::string> attached;  // "uprobe(SSL_write)" ...
  std::vector<std::string> missing;   // optional symbols not found
};

// True when the kernel has uprobe_multi links (6.6+): all uprobes of one program on one binary
// become a single link, attached and detached at once. ECAPTURE_FORCE_PERF_UPROBES=1 says no.
bool uprobe_multi_supported();

// True when the kernel has session uprobes (6.13+) on uprobe_multi links: an entry program can
// skip the return probe of a call. ECAPTURE_NO_UPROBE_SESSION=1 says no.
bool uprobe_session_supported();

// Before load: prepares the object's uprobe programs for the chosen attach method (programs
// named "*_session" are loaded only where session uprobes exist).
void prepare_uprobe_programs(bpf_object* obj, bool multi);

// Attaches every spec to the programs of `obj`. `pid` restricts the uprobes to one process
// (-1: all). On error nothing stays attached. `hint` is appended to "symbol not found" errors
// (e.g. "is this OpenSSL? use --libssl"). `multi` must match prepare_uprobe_programs.
Result<AttachResult> attach_uprobes(bpf_object* obj, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint, bool multi);

// Attaches every loaded program of `obj` whose section starts with "tracepoint/" or
// "raw_tracepoint/".
Result<std::vector<Link>> attach_tracepoints(bpf_object* obj);

// Before load: leaves the fd-learning syscall tracepoints ("tracepoint/syscalls/...") of `obj`
// unloaded, so that they are neither loaded nor attached (keylog mode needs no fd).
void skip_fd_learners(bpf_object* obj);

// Before load, for tests only: ECAPTURE_TEST_MAP_ENTRIES="map:entries[,map:entries]" sets those
// maps' sizes (e.g. a tiny tls_active_calls, to show failed map updates being counted).
Result<void> apply_test_map_sizes(bpf_object* obj);

// Tells that the ring buffer got less than --mapsize asked for (see ring_size_for).
void log_ring_capped(spdlog::logger& log, uint64_t mapsize_pages, const RingSize& ring);

}  // namespace ecapture::bpf
