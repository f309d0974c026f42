// The attacher: resolves symbols to file offsets and attaches uprobes/uretprobes (as uprobe_multi
// links where the kernel has them) and tracepoints.
#include "bpf/probe_spec.h"

#include <bpf/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "elf/elf_file.h"

namespace ecapture::bpf {
namespace {

// Kernel ABI values newer than the uapi headers of libbpf 1.1.
constexpr int kBpfTraceUprobeMulti = 48;     // enum bpf_attach_type BPF_TRACE_UPROBE_MULTI
constexpr int kBpfTraceUprobeSession = 57;   // BPF_TRACE_UPROBE_SESSION (Linux 6.13)
constexpr uint32_t kUprobeMultiReturn = 1;   // BPF_F_UPROBE_MULTI_RETURN

// The link_create member of union bpf_attr, uprobe_multi variant (include/uapi/linux/bpf.h).
struct LinkCreateUprobeMulti {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t uprobe_flags;
  uint32_t pid;
  uint32_t pad;
};
static_assert(sizeof(LinkCreateUprobeMulti) == 64);

int link_create_uprobe_multi(int prog_fd, const char* path, const uint64_t* offsets,
                             const uint64_t* cookies, uint32_t cnt, bool retprobe, int pid,
                             int attach_type = kBpfTraceUprobeMulti) {
  LinkCreateUprobeMulti attr{};
  attr.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = static_cast<uint32_t>(attach_type);
  attr.path = reinterpret_cast<uint64_t>(path);
  attr.offsets = reinterpret_cast<uint64_t>(offsets);
  attr.cookies = reinterpret_cast<uint64_t>(cookies);
  attr.cnt = cnt;
  attr.uprobe_flags = retprobe ? kUprobeMultiReturn : 0;
  attr.pid = pid > 0 ? static_cast<uint32_t>(pid) : 0;
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
  return fd < 0 ? -errno : fd;
}

bool probe_uprobe_multi(int attach_type = kBpfTraceUprobeMulti) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},  // r0 = 0
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts,
              .expected_attach_type = static_cast<bpf_attach_type>(attach_type));
  int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "ecap_probe", "GPL", insns, 2, &opts);
  if (prog < 0) return false;
  // A kernel that knows uprobe_multi fails on the bad path pointer (EFAULT); one that does not
  // rejects the attach type (EINVAL). Nothing gets attached either way.
  uint64_t offset = 0;
  int err = link_create_uprobe_multi(prog, reinterpret_cast<const char*>(1), &offset, nullptr, 1,
                                     false, -1, attach_type);
  if (err >= 0) ::close(err);
  ::close(prog);
  return err == -EFAULT;
}

bool is_session_program(const char* name) {
  size_t n = std::strlen(name);
  return n > 8 && std::strcmp(name + n - 8, "_session") == 0;
}

bool is_uprobe_section(const char* sec) {
  return std::strncmp(sec, "uprobe", 6) == 0 || std::strncmp(sec, "uretprobe", 9) == 0;
}

}  // namespace

bool uprobe_multi_supported() {
  // ECAPTURE_FORCE_PERF_UPROBES=1 takes the pre-6.6 path (for tests of the fallback).
  static const bool supported = [] {
    const char* force = std::getenv("ECAPTURE_FORCE_PERF_UPROBES");
    if (force != nullptr && std::strcmp(force, "1") == 0) return false;
    return probe_uprobe_multi();
  }();
  return supported;
}

bool uprobe_session_supported() {
  // ECAPTURE_NO_UPROBE_SESSION=1 keeps entry + return probes on every call (tests).
  static const bool supported = [] {
    const char* off = std::getenv("ECAPTURE_NO_UPROBE_SESSION");
    if (off != nullptr && std::strcmp(off, "1") == 0) return false;
    return uprobe_multi_supported() && probe_uprobe_multi(kBpfTraceUprobeSession);
  }();
  return supported;
}

void prepare_uprobe_programs(bpf_object* obj, bool multi) {
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    if (!is_uprobe_section(bpf_program__section_name(prog))) continue;
    // Session programs (name "..._session") exist only as session uprobes: without them they are
    // not loaded (their kfunc would not resolve) and the module attaches entry + return instead.
    if (is_session_program(bpf_program__name(prog))) {
      if (multi && uprobe_session_supported()) {
        bpf_program__set_expected_attach_type(
            prog, static_cast<bpf_attach_type>(kBpfTraceUprobeSession));
      } else {
        bpf_program__set_autoload(prog, false);
      }
      continue;
    }
    if (multi) {
      bpf_program__set_expected_attach_type(prog,
                                            static_cast<bpf_attach_type>(kBpfTraceUprobeMulti));
    }
  }
}

Result<AttachResult> attach_uprobes(bpf_object* obj, const std::vector<ProbeSpec>& specs, int pid,
                                    const std::string& hint, bool multi) {
  AttachResult out;
  std::map<std::string, std::unique_ptr<elf::ElfFile>> files;
  // (program, binary, type) -> offsets and cookies, for uprobe_multi links.
  struct Group {
    bpf_program* prog;
    std::vector<uint64_t> offsets, cookies;
  };
  std::map<std::tuple<std::string, std::string, ProbeType>, Group> groups;

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
          if (std::find(out.missing.begin(), out.missing.end(), spec.symbol) ==
              out.missing.end()) {
            out.missing.push_back(spec.symbol);
          }
          continue;
        }
        return make_error("cannot attach uprobe to {} in {}: symbol not found{}", spec.symbol,
                          spec.binary, hint.empty() ? "" : " (" + hint + ")");
      }
      offset = sym->file_offset;
    }
    const char* kind = spec.type == ProbeType::kUretprobe        ? "uretprobe"
                       : spec.type == ProbeType::kUprobeSession ? "uprobe.session"
                                                                : "uprobe";
    if (spec.type == ProbeType::kUprobeSession && !multi) {
      return make_error("internal: session uprobe {} without uprobe_multi links", spec.program);
    }
    std::string what = spec.symbol.empty() ? fmt::format("{:#x}", offset) : spec.symbol;
    out.attached.push_back(fmt::format("{}({})", kind, what));
    if (multi) {
      Group& g = groups[{spec.program, spec.binary, spec.type}];
      g.prog = prog;
      g.offsets.push_back(offset);
      g.cookies.push_back(spec.cookie);
      continue;
    }
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = spec.cookie,
                .retprobe = spec.type == ProbeType::kUretprobe);
    bpf_link* link =
        bpf_program__attach_uprobe_opts(prog, pid, spec.binary.c_str(), offset, &opts);
    if (link == nullptr) {
      return make_errno_error(errno, "cannot attach {} to {} in {} (offset {:#x})", kind, what,
                              spec.binary, offset);
    }
    out.links.emplace_back(link);
  }
  for (const auto& [key, g] : groups) {
    const auto& [program, binary, type] = key;
    int fd = link_create_uprobe_multi(bpf_program__fd(g.prog), binary.c_str(), g.offsets.data(),
                                      g.cookies.data(), static_cast<uint32_t>(g.offsets.size()),
                                      type == ProbeType::kUretprobe, pid,
                                      type == ProbeType::kUprobeSession ? kBpfTraceUprobeSession
                                                                        : kBpfTraceUprobeMulti);
    if (fd < 0) {
      return make_errno_error(-fd, "cannot attach {} ({} functions) to {}", program,
                              g.offsets.size(), binary);
    }
    out.links.push_back(Link::from_fd(fd));
  }
  return out;
}

Result<std::vector<Link>> attach_tracepoints(bpf_object* obj) {
  std::vector<Link> links;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const char* sec = bpf_program__section_name(prog);
    if (std::strncmp(sec, "tracepoint/", 11) != 0 && std::strncmp(sec, "raw_tracepoint/", 15) != 0) {
      continue;
    }
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) return make_errno_error(errno, "cannot attach {}", sec);
    links.emplace_back(link);
  }
  return links;
}

void skip_fd_learners(bpf_object* obj) {
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    if (std::strncmp(bpf_program__section_name(prog), "tracepoint/syscalls/", 20) == 0) {
      bpf_program__set_autoload(prog, false);
    }
  }
}

Result<void> apply_test_map_sizes(bpf_object* obj) {
  const char* env = std::getenv("ECAPTURE_TEST_MAP_ENTRIES");
  if (env == nullptr || *env == '\0') return {};
  std::string_view rest(env);
  while (!rest.empty()) {
    std::string_view item = rest.substr(0, rest.find(','));
    rest.remove_prefix(std::min(rest.size(), item.size() + 1));
    size_t colon = item.find(':');
    uint32_t entries = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(item.data() + colon + 1, item.data() + item.size(), entries).ec !=
            std::errc() ||
        entries == 0) {
      return make_error("ECAPTURE_TEST_MAP_ENTRIES: '{}' is not map:entries", item);
    }
    std::string name(item.substr(0, colon));
    bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (map == nullptr) continue;  // another module's map
    if (int err = bpf_map__set_max_entries(map, entries); err != 0) {
      return make_errno_error(err, "ECAPTURE_TEST_MAP_ENTRIES: cannot size {}", name);
    }
  }
  return {};
}

void log_ring_capped(spdlog::logger& log, uint64_t mapsize_pages, const RingSize& ring) {
  log.warn("--mapsize {} pages per CPU would make a {} MiB ring buffer (one ring serves all "
           "CPUs); capped at {} MiB", mapsize_pages, ring.wanted >> 20, ring.bytes >> 20);
}

}  // namespace ecapture::bpf
