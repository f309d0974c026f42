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

struct ModuleInfo {
  std::string name;                  // canonical name, e.g. "tls"
  std::vector<std::string> aliases;  // e.g. {"openssl"}
  std::string description;
  std::function<ModulePtr()> create;
  // Builds the module's config from an HTTP API JSON body (eCapture's field names); fields left
  // out take `defaults` (the command line's global flags) and the module's defaults. Errors name
  // the field. Empty: the module cannot be configured over the API yet.
  std::function<Result<std::unique_ptr<ModuleConfig>>(const nlohmann::json&,
                                                      const GlobalConfig& defaults)>
      config_from_json;
};

class ModuleRegistry {
 public:
  // Rejects empty names, a missing factory, and any name or alias already taken.
  Result<void> add(ModuleInfo info);
  // Looks a module up by its name or one of its aliases.
  const ModuleInfo* find(std::string_view name) const;
  Result<ModulePtr> create(std::string_view name) const;
  const std::vector<ModuleInfo>& modules() const { return modules_; }

 private:
  std::vector<ModuleInfo> modules_;
};

// Every module ecapture ships (src/modules/all_modules.cc).
const ModuleRegistry& builtin_registry();

}  // namespace ecapture
