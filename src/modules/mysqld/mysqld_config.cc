// Validation of the mysqld module's flags.
#include "modules/mysqld/mysqld_config.h"

#include "core/config_json.h"

namespace ecapture::mysqld {

Result<void> MysqldConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  if (offset != 0 && !funcname.empty()) {
    return make_error("--offset {:#x} and --funcname {} both name the function to hook: give "
                      "only one", offset, funcname);
  }
  return {};
}

nlohmann::json MysqldConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["mysqldpath"] = mysqld;
  j["funcname"] = funcname;
  j["offset"] = offset;
  return j;
}

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<MysqldConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  if (f.has("mysqldpath") && f.has("mysqlpath")) {
    return make_error("fields 'mysqldpath' and 'mysqlpath' both given: give one");
  }
  RETURN_IF_ERROR(f.get("mysqldpath", cfg->mysqld));
  RETURN_IF_ERROR(f.get("mysqlpath", cfg->mysqld));
  RETURN_IF_ERROR(f.get("funcname", cfg->funcname));
  RETURN_IF_ERROR(f.get_uint("offset", cfg->offset));
  RETURN_IF_ERROR(f.accept_unused({"elftype", "version", "versioninfo"}));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(check_file_field("mysqldpath", cfg->mysqld));
  if (cfg->offset != 0 && !cfg->funcname.empty()) {
    return make_error("fields 'offset' and 'funcname' both name the function to hook: give one");
  }
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::mysqld
