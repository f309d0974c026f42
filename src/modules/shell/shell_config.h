// Configuration of the bash and zsh audit modules (eCapture's `bash` and `zsh` flags).
#pragma once

#include <optional>
#include <string>

#include "core/config.h"

namespace ecapture::shell {

struct ShellConfig {
  // -e/--errnumber: show only commands whose exit status is this (0-255); unset: all.
  std::optional<int> errnumber;
};

struct BashConfig : ConfigOf<BashConfig>, ShellConfig {
  std::string bash;        // --bash: the bash executable; empty = $SHELL if bash, else /bin/bash
  std::string readlineso;  // --readlineso: the readline library when bash links it dynamically

  // JSON: eCapture's `bashpath`, `readline`, `ErrNo`/`errno` (128, its default, = every command)
  // or ours `errnumber` (null = every command).
  const FieldTable& fields() const override;
};

struct ZshConfig : ConfigOf<ZshConfig>, ShellConfig {
  std::string zsh;  // --zsh: the zsh executable; empty = $SHELL if zsh, else /bin/zsh

  // JSON: `zshpath` and the same exit-status fields as bash.
  const FieldTable& fields() const override;
};

// The shell to hook: `flag_value` when given, else $SHELL (`shell_env`, may be null) when its
// file name contains `name`, else `fallback`.
std::string default_shell_path(const std::string& flag_value, const char* shell_env,
                               const std::string& name, const std::string& fallback);

}  // namespace ecapture::shell
