// bash/zsh modules: locating the shell and its line editor, BPF load/attach, command delivery.
#include "core/clock.h"
#include "modules/shell/shell_module.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ctime>

#include "bpf/skeleton.h"
#include "core/sink.h"
#include "events/audit_event.h"
#include "elf/elf_file.h"
#include "elf/lib_discovery.h"

namespace ecapture::shell {
namespace {

constexpr const char* kBashHint = "is this bash? pass the right file with --bash";
constexpr const char* kZshHint = "is this zsh? pass the right file with --zsh";

// A defined data symbol (a global variable) of `f`.
std::optional<elf::Symbol> find_object(const elf::ElfFile& f, std::string_view name) {
  for (const auto& s : f.symbols()) {
    if (s.name == name && s.defined && !s.is_function && s.value != 0) return s;
  }
  return std::nullopt;
}

// The lowest virtual address of an executable PT_LOAD segment: the kernel's mm->start_code is
// this address plus the load bias.
Result<uint64_t> exec_segment_vaddr(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_errno_error(errno, "cannot open {}", path);
  Elf* e = elf_begin(fd, ELF_C_READ, nullptr);
  size_t n = 0;
  std::optional<uint64_t> lowest;
  if (e != nullptr && elf_getphdrnum(e, &n) == 0) {
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(e, static_cast<int>(i), &ph) == nullptr) continue;
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) && (!lowest || ph.p_vaddr < *lowest)) {
        lowest = ph.p_vaddr;
      }
    }
  }
  if (e != nullptr) elf_end(e);
  ::close(fd);
  if (!lowest) return make_error("{} has no executable segment", path);
  return *lowest;
}

// Inode and kernel-encoded device of `path` (what mm->exe_file->f_inode holds).
Result<void> identify(const std::string& path, ShellTarget& t) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return make_errno_error(errno, "cannot stat {}", path);
  t.ino = st.st_ino;
  t.kdev = (major(st.st_dev) << 20) | minor(st.st_dev);
  return {};
}

// Opens the shell executable named by a flag (or its default) with errors naming the flag.
Result<std::unique_ptr<elf::ElfFile>> open_shell(const std::string& path, const char* flag,
                                                 const char* hint) {
  auto opened = elf::ElfFile::open(path);
  if (!opened) return make_error("{}: {} ({})", flag, opened.error().to_string(), hint);
  auto elf = std::move(opened).value();
  if (!elf->is_native_arch()) {
    return make_error("{}: {} is built for another CPU architecture (e_machine {}) ({})", flag,
                      path, elf->machine(), hint);
  }
  return elf;
}

}  // namespace

const char* record_kind(ShellKind kind) { return kind == ShellKind::kBash ? "BASH" : "ZSH"; }

Result<ShellTarget> locate_bash(const BashConfig& cfg, const char* shell_env) {
  ShellTarget t;
  t.shell = default_shell_path(cfg.bash, shell_env, "bash", "/bin/bash");
  ASSIGN_OR_RETURN(auto bash, open_shell(t.shell, "--bash", kBashHint));

  // readline: --readlineso, else bash itself (Debian links it in), else its DT_NEEDED library.
  std::unique_ptr<elf::ElfFile> editor;
  if (!cfg.readlineso.empty()) {
    auto opened = elf::ElfFile::open(cfg.readlineso);
    if (!opened) return make_error("--readlineso: {}", opened.error().to_string());
    editor = std::move(opened).value();
    if (!editor->find_function("readline")) {
      return make_error("--readlineso: {} does not export readline (is this libreadline?)",
                        cfg.readlineso);
    }
    t.editor = cfg.readlineso;
  } else if (bash->find_function("readline")) {
    t.editor = t.shell;
  } else {
    std::string soname;
    for (const auto& n : bash->needed()) {
      if (n.rfind("libreadline.so", 0) == 0) soname = n;
    }
    if (soname.empty()) {
      return make_error("{} has no readline (it neither exports readline nor links "
                        "libreadline.so), so it cannot be an interactive bash ({}; if readline "
                        "is a separate library, name it with --readlineso)", t.shell, kBashHint);
    }
    auto found = elf::find_library({soname});
    if (!found) {
      return make_error("{} links {}, which was not found ({}); name it with --readlineso",
                        t.shell, soname, found.error().to_string());
    }
    t.editor = *found;
    auto opened = elf::ElfFile::open(t.editor);
    if (!opened) return std::move(opened).error();
    editor = std::move(opened).value();
  }
  const elf::ElfFile& ed = editor ? *editor : *bash;

  // The globals that say whether bash is interactive and how its last command ended.
  ASSIGN_OR_RETURN(uint64_t text_vaddr, exec_segment_vaddr(t.shell));
  struct Global {
    const char* name;
    uint64_t* off;
  };
  for (Global g : {Global{"last_command_exit_value", &t.off_status},
                   Global{"current_command_line_count", &t.off_line_count},
                   Global{"interactive", &t.off_interactive},
                   Global{"executing", &t.off_executing}}) {
    auto sym = find_object(*bash, g.name);
    if (!sym) {
      return make_error("{} does not export the variable {} (bash 4 or newer, linked with "
                        "-rdynamic as distributions do, exports it; {})", t.shell, g.name,
                        kBashHint);
    }
    *g.off = sym->value - text_vaddr;
  }
  RETURN_IF_ERROR(identify(t.shell, t));

  // readline's entry marks a new prompt (the previous command is done); the line comes from
  // readline_internal_teardown, which runs after the line was typed, so a bash already waiting
  // at its prompt when capture starts loses nothing.
  const std::string line_fn =
      ed.find_function("readline_internal_teardown") ? "readline_internal_teardown" : "readline";
  t.probes.push_back({t.editor, "readline", 0, "probe_bash_readline_enter",
                      bpf::ProbeType::kUprobe, false, 0});
  t.probes.push_back({t.editor, line_fn, 0, "probe_bash_line_exit", bpf::ProbeType::kUretprobe,
                      false, 0});
  return t;
}

Result<ShellTarget> locate_zsh(const ZshConfig& cfg, const char* shell_env) {
  ShellTarget t;
  t.shell = default_shell_path(cfg.zsh, shell_env, "zsh", "/bin/zsh");
  ASSIGN_OR_RETURN(auto zsh, open_shell(t.shell, "--zsh", kZshHint));
  if (!zsh->find_function("zleentry")) {
    return make_error("{} does not export zleentry, the entry to zsh's line editor ({})", t.shell,
                      kZshHint);
  }
  t.editor = t.shell;
  if (auto lastval = find_object(*zsh, "lastval")) {
    ASSIGN_OR_RETURN(uint64_t text_vaddr, exec_segment_vaddr(t.shell));
    t.off_status = lastval->value - text_vaddr;
  }
  RETURN_IF_ERROR(identify(t.shell, t));
  t.probes.push_back({t.shell, "zleentry", 0, "probe_zsh_zleentry_enter", bpf::ProbeType::kUprobe,
                      false, 0});
  t.probes.push_back({t.shell, "zleentry", 0, "probe_zsh_zleentry_exit",
                      bpf::ProbeType::kUretprobe, false, 0});
  return t;
}

Result<void> ShellModule::on_init() {
  const char* shell_env = std::getenv("SHELL");
  if (kind_ == ShellKind::kBash) {
    ASSIGN_OR_RETURN(target_, locate_bash(config_as<BashConfig>(), shell_env));
  } else {
    ASSIGN_OR_RETURN(target_, locate_zsh(config_as<ZshConfig>(), shell_env));
  }
  errnumber_ = kind_ == ShellKind::kBash ? config_as<BashConfig>().errnumber
                                         : config_as<ZshConfig>().errnumber;
  return {};
}

Result<void> ShellModule::on_start() {
  if (target_.editor != target_.shell) {
    log().info("{}: {} (readline: {})", name(), target_.shell, target_.editor);
  } else {
    log().info("{}: {}", name(), target_.shell);
  }
  if (target_.off_status == 0) {
    log().warn("{} does not export lastval: commands are reported without exit status",
               target_.shell);
  }
  const bool bash = kind_ == ShellKind::kBash;
  // Commands are rare and small: the reader is woken for every one.
  bpf::SkeletonSettings settings = skeleton_settings();
  settings.wake_every_record = true;
  RETURN_IF_ERROR(session().load<shell_bpf>(
                       settings, shell_bpf__open_opts, shell_bpf__load, shell_bpf__destroy,
                       [&](shell_bpf* sk) -> Result<void> {
                         sk->rodata->shell_ino = target_.ino;
                         sk->rodata->shell_dev = target_.kdev;
                         sk->rodata->off_status = target_.off_status;
                         sk->rodata->off_line_count = target_.off_line_count;
                         sk->rodata->off_interactive = target_.off_interactive;
                         sk->rodata->off_executing = target_.off_executing;
                         bpf_program__set_autoload(sk->progs.probe_bash_readline_enter, bash);
                         bpf_program__set_autoload(sk->progs.probe_bash_line_exit, bash);
                         bpf_program__set_autoload(sk->progs.probe_zsh_zleentry_enter, !bash);
                         bpf_program__set_autoload(sk->progs.probe_zsh_zleentry_exit, !bash);
                         return {};
                       }));
  ASSIGN_OR_RETURN(auto attached,
                   session().attach(target_.probes, attach_pid(), bash ? kBashHint : kZshHint));
  std::string hooks;
  for (const auto& a : attached.attached) hooks += (hooks.empty() ? "" : ", ") + a;
  log().info("hooks attached to {}: {}", target_.editor, hooks);
  return {};
}

Result<void> ShellModule::on_run() {
  const auto& g = config()->global;
  joiner_ = std::make_unique<ShellJoiner>(kind_, monotonic_to_wall_ns(),
                                          [this](ShellCommand&& c) { deliver(std::move(c)); });
  RETURN_IF_ERROR(
      start_reading([this](std::span<const uint8_t> r) { return joiner_->add(r); }));
  log_started(fmt::format("{}{}{}{}", target_.shell, g.pid ? fmt::format(", pid {}", g.pid) : "",
                          g.uid ? fmt::format(", uid {}", g.uid) : "",
                          errnumber_ ? fmt::format(", only exit status {}", *errnumber_) : ""));
  return {};
}

void ShellModule::deliver(ShellCommand&& c) {
  if (errnumber_ && (!c.status || *c.status != *errnumber_)) return;
  counters_mut().events.fetch_add(1);
  counters_mut().bytes.fetch_add(c.text.size());
  if (ctx().sink == nullptr) return;
  AuditEvent e;
  e.timestamp_ns = c.timestamp_ns;
  e.kind = record_kind(kind_);
  e.pid = c.pid;
  e.tid = c.pid;
  e.uid = c.uid;
  e.comm = std::move(c.comm);
  e.cgroup = CgroupResolver::host().lookup(c.cgroup_id);
  e.type = "command";
  if (c.status) e.status = *c.status;
  if (c.duration_ns) e.duration_ns = *c.duration_ns;
  e.attrs.emplace_back("end", to_string(c.end));
  if (c.incomplete) e.attrs.emplace_back("incomplete", "1");
  e.text = std::move(c.text);
  e.source = name();
  ctx().sink->emit_audit(e);
}

ModuleInfo bash_entry() {
  return make_entry<BashConfig>(
      "bash", {}, "capture the commands typed into interactive bash shells, with their exit status",
      {"/bash"}, "bash", [] { return ModulePtr(new ShellModule(ShellKind::kBash)); });
}

ModuleInfo zsh_entry() {
  return make_entry<ZshConfig>(
      "zsh", {}, "capture the commands typed into interactive zsh shells, with their exit status",
      {"/zsh"}, "zsh", [] { return ModulePtr(new ShellModule(ShellKind::kZsh)); });
}

}  // namespace ecapture::shell
