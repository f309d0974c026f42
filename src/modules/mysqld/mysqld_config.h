// Configuration of the mysqld module (eCapture's `mysqld` flags).
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace ecapture::mysqld {

struct MysqldConfig : ConfigOf<MysqldConfig> {
  std::string mysqld;    // -m/--mysqld: the server binary; empty = the running server, else
                         // /usr/sbin/mariadbd
  std::string funcname;  // -f/--funcname: the function to hook; empty = dispatch_command
  uint64_t offset = 0;   // --offset: hook this address (as nm shows it) instead of a symbol

  // JSON: eCapture's `mysqldPath` (also `mysqlpath`), `funcName`, `offset` (names are
  // case-insensitive).
  const FieldTable& fields() const override;
};

}  // namespace ecapture::mysqld
