// Test helper: an API body turned into a module's config through its registry entry, as the API
// reads it.
#pragma once

#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/registry.h"

namespace ecapture {

inline Result<std::unique_ptr<ModuleConfig>> json_config(std::string_view module,
                                                         const nlohmann::json& j,
                                                         const GlobalConfig& d = {}) {
  return builtin_registry().find(module)->config_from_json(j, d);
}

}  // namespace ecapture
