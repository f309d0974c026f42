// The attacher: resolves symbols to file offsets and attaches uprobes/uretprobes and tracepoints.
#include "bpf/probe_spec.h"

#include <cstring>
#include <map>
#include <memory>

#include "elf/elf_file.h"

namespace ecapture::bpf {

Result<AttachResult> attach_uprobes(bpf_object* obj, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint) {
  AttachResult out;
  std::map<std::string, std::unique_ptr<elf::ElfFile>> files;
  for (const auto& spec : specs) {
    bpf_program* prog = bpf_object__find_program_by_name(obj, spec.program.c_str());
    if (prog == nullptr) {
      return make_error("internal: BPF program {} not found in object", spec.program);
    }
    uint64_t offset = spec.offset;
    if (!spec.symbol.empty()) {
      auto& file = files[spec.binary];
      if (!file) {
        ASSIGN_OR_RETURN(file, elf::ElfFile::open(spec.binary));
      }
      auto sym = file->find_function(spec.symbol);
      if (!sym || sym->file_offset == 0) {
        if (spec.optional) {
          out.missing.push_back(spec.symbol);
          continue;
        }
        return make_error("cannot attach uprobe to {} in {}: symbol not found{}", spec.symbol,
                          spec.binary, hint.empty() ? "" : " (" + hint + ")");
      }
      offset = sym->file_offset;
    }
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = spec.type == ProbeType::kUretprobe);
    bpf_link* link =
        bpf_program__attach_uprobe_opts(prog, pid, spec.binary.c_str(), offset, &opts);
    if (link == nullptr) {
      int err = errno;
      return make_errno_error(err, "cannot attach {} to {} in {} (offset {:#x})",
                              spec.type == ProbeType::kUretprobe ? "uretprobe" : "uprobe",
                              spec.symbol.empty() ? spec.program : spec.symbol, spec.binary,
                              offset);
    }
    out.links.emplace_back(link);
    std::string what = spec.symbol.empty() ? fmt::format("{:#x}", offset) : spec.symbol;
    out.attached.push_back(
        fmt::format("{}({})", spec.type == ProbeType::kUretprobe ? "uretprobe" : "uprobe", what));
  }
  return out;
}

Result<std::vector<LinkPtr>> attach_tracepoints(bpf_object* obj) {
  std::vector<LinkPtr> links;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const char* sec = bpf_program__section_name(prog);
    if (std::strncmp(sec, "tracepoint/", 11) != 0) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) {
      int err = errno;
      return make_errno_error(err, "cannot attach tracepoint {}", sec + 11);
    }
    links.emplace_back(link);
  }
  return links;
}

}  // namespace ecapture::bpf
