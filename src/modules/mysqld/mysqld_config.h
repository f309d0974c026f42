// Configuration of the mysqld module (eCapture's `mysqld` flags).
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace ecapture::mysqld {

struct MysqldConfig : ModuleConfig {
  std::string mysqld;    // -m/--mysqld: the server binary; empty = the running server, else
                         // /usr/sbin/mariadbd
  std::string funcname;  // -f/--funcname: the function to hook; empty = dispatch_command
  uint64_t offset = 0;   // --offset: hook this address (as nm shows it) instead of a symbol

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<MysqldConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// HTTP API body → config: eCapture's `mysqldPath` (also `mysqlpath`), `funcName`, `offset`
// (names are case-insensitive), plus the shared base fields.
Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults);

}  // namespace ecapture::mysqld
