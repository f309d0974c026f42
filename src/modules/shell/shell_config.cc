// Validation of the bash and zsh modules' flags.
#include "modules/shell/shell_config.h"

#include "core/config_json.h"

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

namespace {
Result<void> exit_status_from_json(JsonFields& f, std::optional<int>& out) {
  if (f.has("errno") && f.has("errnumber")) {
    return make_error("fields 'errno' and 'errnumber' both given: give one");
  }
  uint64_t v = 0;
  const bool ecapture_style = f.has("errno");
  RETURN_IF_ERROR(f.get_uint("errno", v, 255));
  if (ecapture_style) out = v == 128 ? std::nullopt : std::optional<int>(static_cast<int>(v));
  if (f.has("errnumber")) {
    RETURN_IF_ERROR(f.get_uint("errnumber", v, 255));
    out = static_cast<int>(v);
  }
  return f.accept_unused({"elftype", "elf_type", "readlinefuncname", "readline_func_name"});
}
}  // namespace

Result<std::unique_ptr<ModuleConfig>> bash_config_from_json(const nlohmann::json& j,
                                                            const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<BashConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("bashpath", cfg->bash));
  RETURN_IF_ERROR(f.get("readline", cfg->readlineso));
  RETURN_IF_ERROR(exit_status_from_json(f, cfg->errnumber));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(check_file_field("bashpath", cfg->bash));
  RETURN_IF_ERROR(check_file_field("readline", cfg->readlineso));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

Result<std::unique_ptr<ModuleConfig>> zsh_config_from_json(const nlohmann::json& j,
                                                           const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<ZshConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("zshpath", cfg->zsh));
  RETURN_IF_ERROR(exit_status_from_json(f, cfg->errnumber));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(check_file_field("zshpath", cfg->zsh));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::shell
