// ModuleRegistry: the explicit list of capture modules, their names, aliases and factories.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/module.h"
#include "core/result.h"

namespace ecapture {

// Everything ecapture knows of a module: the command line, the HTTP API and /status are built
// from this entry alone (a module's entry lives in its own folder).
struct ModuleInfo {
  std::string name;                  // canonical name and subcommand, e.g. "tls"
  std::vector<std::string> aliases;  // e.g. {"openssl"}
  std::string help;                  // one line, for the subcommand's help
  std::vector<std::string> api_paths;  // POST endpoints, e.g. {"/tls", "/openssl", "/boringssl"}
  std::string module_type;           // eCapture's module_type in API responses, e.g. "openssl"
  std::function<std::unique_ptr<ModuleConfig>()> make_config;  // the defaults
  std::function<ModulePtr()> create;

  // Builds the module's config from an HTTP API JSON body (eCapture's field names); fields left
  // out take `defaults` (the command line's global flags) and the module's defaults. Errors name
  // the field.
  Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                         const GlobalConfig& defaults) const;
};

// The entry of a module whose config type and factory are known.
template <typename Config>
ModuleInfo make_entry(std::string name, std::vector<std::string> aliases, std::string help,
                      std::vector<std::string> api_paths, std::string module_type,
                      std::function<ModulePtr()> create) {
  return ModuleInfo{std::move(name),      std::move(aliases),
                    std::move(help),      std::move(api_paths),
                    std::move(module_type), [] { return std::make_unique<Config>(); },
                    std::move(create)};
}

class ModuleRegistry {
 public:
  // Rejects empty names, a missing factory, and any name or alias already taken.
  Result<void> add(ModuleInfo info);
  // Looks a module up by its name or one of its aliases.
  const ModuleInfo* find(std::string_view name) const;
  // The module an API path ("/openssl") configures.
  const ModuleInfo* find_by_path(std::string_view path) const;
  Result<ModulePtr> create(std::string_view name) const;
  const std::vector<ModuleInfo>& modules() const { return modules_; }

 private:
  std::vector<ModuleInfo> modules_;
};

// Every module ecapture ships (src/modules/all_modules.cc).
const ModuleRegistry& builtin_registry();

}  // namespace ecapture
