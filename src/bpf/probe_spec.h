// Probes are data: a module lists what to attach, one attacher walks the list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/handles.h"
#include "core/result.h"

namespace ecapture::bpf {

enum class ProbeType { kUprobe, kUretprobe };

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

// Before load: prepares the object's uprobe programs for the chosen attach method.
void prepare_uprobe_programs(bpf_object* obj, bool multi);

// Attaches every spec to the programs of `obj`. `pid` restricts the uprobes to one process
// (-1: all). On error nothing stays attached. `hint` is appended to "symbol not found" errors
// (e.g. "is this OpenSSL? use --libssl"). `multi` must match prepare_uprobe_programs.
Result<AttachResult> attach_uprobes(bpf_object* obj, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint, bool multi);

// Attaches every program of `obj` whose section starts with "tracepoint/" or "raw_tracepoint/".
Result<std::vector<Link>> attach_tracepoints(bpf_object* obj);

}  // namespace ecapture::bpf
