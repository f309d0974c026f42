// The bash and zsh audit modules: every command typed into an interactive shell, with its exit
// status. One class serves both; they differ in the binary they hook and the globals they read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/capture_module.h"
#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "modules/shell/shell_config.h"
#include "modules/shell/shell_events.h"
#include "shell.skel.h"

namespace ecapture::shell {

// What the kernel side needs to know about the shell to watch.
struct ShellTarget {
  std::string shell;   // the shell executable
  std::string editor;  // the file with the line editor's hooks (bash, libreadline, zsh)
  uint64_t ino = 0;    // the shell executable's inode and device (kernel dev_t encoding)
  uint32_t kdev = 0;
  // Addresses of the shell's globals relative to the load address of its first executable
  // segment (mm->start_code); 0 when absent.
  uint64_t off_status = 0;
  uint64_t off_line_count = 0;
  uint64_t off_interactive = 0;
  uint64_t off_executing = 0;
  std::vector<bpf::ProbeSpec> probes;
};

// Resolves the bash to watch (--bash, $SHELL, /bin/bash) and its readline (in bash itself, from
// --readlineso, or through DT_NEEDED libreadline.so.*). `shell_env` is $SHELL (may be null).
Result<ShellTarget> locate_bash(const BashConfig& cfg, const char* shell_env);
// Resolves the zsh to watch (--zsh, $SHELL, /bin/zsh).
Result<ShellTarget> locate_zsh(const ZshConfig& cfg, const char* shell_env);

// The upper-case record tag ("BASH", "ZSH").
const char* record_kind(ShellKind kind);

// The registry entries of the bash and zsh modules.
ModuleInfo bash_entry();
ModuleInfo zsh_entry();

class ShellModule final : public bpf::CaptureModule {
 public:
  explicit ShellModule(ShellKind kind)
      : CaptureModule(kind == ShellKind::kBash ? "bash" : "zsh"), kind_(kind) {}

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_drained() override {
    if (joiner_) joiner_->flush();
  }
  void on_release() override { joiner_.reset(); }

 private:
  void deliver(ShellCommand&& c);

  ShellKind kind_;
  ShellTarget target_;
  std::optional<int> errnumber_;
  std::unique_ptr<ShellJoiner> joiner_;
};

}  // namespace ecapture::shell
