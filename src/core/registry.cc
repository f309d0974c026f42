// ModuleRegistry lookups and validation.
#include "core/registry.h"

#include "core/config_json.h"

namespace ecapture {

Result<void> ModuleRegistry::add(ModuleInfo info) {
  if (info.name.empty()) return make_error("module registry: empty module name");
  if (!info.create || !info.make_config) {
    return make_error("module registry: module {} has no factory", info.name);
  }
  for (const auto& path : info.api_paths) {
    if (path.empty() || path[0] != '/') {
      return make_error("module registry: module {}: API path '{}' must start with /", info.name,
                        path);
    }
    if (const ModuleInfo* other = find_by_path(path)) {
      return make_error("module registry: API path {} of module {} is already taken by module {}",
                        path, info.name, other->name);
    }
  }
  std::vector<std::string> names = info.aliases;
  names.push_back(info.name);
  for (const auto& n : names) {
    if (n.empty()) return make_error("module registry: module {} has an empty alias", info.name);
    if (const ModuleInfo* other = find(n)) {
      return make_error("module registry: name {} of module {} is already taken by module {}", n,
                        info.name, other->name);
    }
  }
  for (size_t i = 0; i < info.aliases.size(); ++i) {
    for (size_t j = i + 1; j < info.aliases.size(); ++j) {
      if (info.aliases[i] == info.aliases[j] || info.aliases[i] == info.name) {
        return make_error("module registry: module {} lists {} twice", info.name,
                          info.aliases[i]);
      }
    }
    if (info.aliases[i] == info.name) {
      return make_error("module registry: module {} lists {} twice", info.name, info.name);
    }
  }
  modules_.push_back(std::move(info));
  return {};
}

const ModuleInfo* ModuleRegistry::find(std::string_view name) const {
  for (const auto& m : modules_) {
    if (m.name == name) return &m;
    for (const auto& a : m.aliases) {
      if (a == name) return &m;
    }
  }
  return nullptr;
}

const ModuleInfo* ModuleRegistry::find_by_path(std::string_view path) const {
  for (const auto& m : modules_) {
    for (const auto& p : m.api_paths) {
      if (p == path) return &m;
    }
  }
  return nullptr;
}

Result<std::unique_ptr<ModuleConfig>> ModuleInfo::config_from_json(
    const nlohmann::json& j, const GlobalConfig& defaults) const {
  JsonFields f(j);
  std::unique_ptr<ModuleConfig> cfg = make_config();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  const FieldTable& table = cfg->fields();
  RETURN_IF_ERROR(table.from_json(f, *cfg));
  RETURN_IF_ERROR(f.finish());
  if (table.check_json) RETURN_IF_ERROR(table.check_json(*cfg));
  return cfg;
}

Result<ModulePtr> ModuleRegistry::create(std::string_view name) const {
  const ModuleInfo* info = find(name);
  if (info == nullptr) {
    std::string known;
    for (const auto& m : modules_) {
      if (!known.empty()) known += ", ";
      known += m.name;
    }
    return make_error("unknown module {}: available modules are {}", name, known);
  }
  ModulePtr m = info->create();
  if (!m) return make_error("module {}: factory returned nothing", info->name);
  return m;
}

}  // namespace ecapture
