// Configuration of the bash and zsh audit modules (eCapture's `bash` and `zsh` flags).
#pragma once

#include <optional>
#include <string>

#include "core/config.h"

namespace ecapture::shell {

struct ShellConfig : ModuleConfig {
  // -e/--errnumber: show only commands whose exit status is this (0-255); unset: all.
  std::optional<int> errnumber;

  Result<void> validate() const override;
  nlohmann::json to_json() const override;
};

struct BashConfig : ShellConfig {
  std::string bash;        // --bash: the bash executable; empty = $SHELL if bash, else /bin/bash
  std::string readlineso;  // --readlineso: the readline library when bash links it dynamically

  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<BashConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

struct ZshConfig : ShellConfig {
  std::string zsh;  // --zsh: the zsh executable; empty = $SHELL if zsh, else /bin/zsh

  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<ZshConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// HTTP API body → config. bash: eCapture's `bashpath`, `readline`, `ErrNo`/`errno` (128, its
// default, = every command) or ours `errnumber` (null = every command); zsh: `zshpath` and the
// same exit-status fields; plus the shared base fields.
Result<std::unique_ptr<ModuleConfig>> bash_config_from_json(const nlohmann::json& j,
                                                            const GlobalConfig& defaults);
Result<std::unique_ptr<ModuleConfig>> zsh_config_from_json(const nlohmann::json& j,
                                                           const GlobalConfig& defaults);

// The shell to hook: `flag_value` when given, else $SHELL (`shell_env`, may be null) when its
// file name contains `name`, else `fallback`.
std::string default_shell_path(const std::string& flag_value, const char* shell_env,
                               const std::string& name, const std::string& fallback);

}  // namespace ecapture::shell
