// Probes are data: a module lists what to attach, one attacher walks the list.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <spdlog/logger.h>

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
  bool optional = false;  // missing symbol: warn and go on
};

struct AttachResult {
  std::vector<LinkPtr> links;
  std::vector<std::string> attached;  // "SSL_write (uprobe)" ...
  std::vector<std::string> missing;   // optional symbols not found
};

// Attaches every spec to the programs of `obj`. `pid` restricts the uprobes to one process
// (-1: all). On error nothing stays attached. `hint` is appended to "symbol not found" errors
// (e.g. "is this OpenSSL? use --libssl").
Result<AttachResult> attach_uprobes(bpf_object* obj, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint);

// Attaches every tracepoint program of `obj` whose section starts with "tracepoint/".
Result<std::vector<LinkPtr>> attach_tracepoints(bpf_object* obj);

}  // namespace ecapture::bpf
