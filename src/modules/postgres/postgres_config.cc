// Validation of the postgres module's flags.
#include "modules/postgres/postgres_config.h"

namespace ecapture::postgres {

Result<void> PostgresConfig::validate() const { return ModuleConfig::validate(); }

nlohmann::json PostgresConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["postgrespath"] = postgres;
  j["funcname"] = funcname;
  return j;
}

}  // namespace ecapture::postgres
