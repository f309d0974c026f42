// Validation of the mysqld module's flags.
#include "modules/mysqld/mysqld_config.h"

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

}  // namespace ecapture::mysqld
