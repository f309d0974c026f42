// ModuleRegistry lookups and validation.
#include "core/registry.h"

namespace ecapture {

Result<void> ModuleRegistry::add(ModuleInfo info) {
  if (info.name.empty()) return make_error("module registry: empty module name");
  if (!info.create) return make_error("module registry: module {} has no factory", info.name);
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
