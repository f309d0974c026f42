// Configuration of the postgres module (eCapture's `postgres` flags).
#pragma once

#include <string>

#include "core/config.h"

namespace ecapture::postgres {

struct PostgresConfig : ModuleConfig {
  std::string postgres;  // -m/--postgres: the server binary; empty = the running server's, else
                         // the newest /usr/lib/postgresql/*/bin/postgres
  std::string funcname;  // -f/--funcname: empty = pgstat_report_activity; any other function
                         // must take the statement text as its first argument

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<PostgresConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// HTTP API body → config: eCapture's `postgresPath`, `funcName` (names are case-insensitive),
// plus the shared base fields.
Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults);

}  // namespace ecapture::postgres
