// Validation of the bash and zsh modules' flags.
#include "modules/shell/shell_config.h"

namespace ecapture::shell {

Result<void> ShellConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  if (errnumber && (*errnumber < 0 || *errnumber > 255)) {
    return make_error("invalid value {} for -e/--errnumber: an exit status is 0-255 (leave it out "
                      "to show every command)", *errnumber);
  }
  return {};
}

nlohmann::json ShellConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["errnumber"] = errnumber ? nlohmann::json(*errnumber) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json BashConfig::to_json() const {
  nlohmann::json j = ShellConfig::to_json();
  j["bashpath"] = bash;
  j["readline"] = readlineso;
  return j;
}

nlohmann::json ZshConfig::to_json() const {
  nlohmann::json j = ShellConfig::to_json();
  j["zshpath"] = zsh;
  return j;
}

std::string default_shell_path(const std::string& flag_value, const char* shell_env,
                               const std::string& name, const std::string& fallback) {
  if (!flag_value.empty()) return flag_value;
  if (shell_env != nullptr) {
    std::string s = shell_env;
    std::string base = s.substr(s.find_last_of('/') + 1);
    if (!s.empty() && base.find(name) != std::string::npos) return s;
  }
  return fallback;
}

}  // namespace ecapture::shell
