// Configuration of the postgres module (eCapture's `postgres` flags).
#pragma once

#include <string>

#include "core/config.h"

namespace ecapture::postgres {

struct PostgresConfig : ConfigOf<PostgresConfig> {
  std::string postgres;  // -m/--postgres: the server binary; empty = the running server's, else
                         // the newest /usr/lib/postgresql/*/bin/postgres
  std::string funcname;  // -f/--funcname: empty = pgstat_report_activity; any other function
                         // must take the statement text as its first argument

  // JSON: eCapture's `postgresPath`, `funcName` (names are case-insensitive).
  const FieldTable& fields() const override;
};

}  // namespace ecapture::postgres
