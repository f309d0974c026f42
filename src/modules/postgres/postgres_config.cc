// Validation of the postgres module's flags.
#include "modules/postgres/postgres_config.h"

#include "core/config_json.h"

namespace ecapture::postgres {

Result<void> PostgresConfig::validate() const { return ModuleConfig::validate(); }

nlohmann::json PostgresConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["postgrespath"] = postgres;
  j["funcname"] = funcname;
  return j;
}

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<PostgresConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("postgrespath", cfg->postgres));
  RETURN_IF_ERROR(f.get("funcname", cfg->funcname));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(check_file_field("postgrespath", cfg->postgres));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::postgres
