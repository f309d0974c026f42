// The postgres module's settings.
#include "modules/postgres/postgres_config.h"

namespace ecapture::postgres {

const FieldTable& PostgresConfig::fields() const {
  return field_table<PostgresConfig>([](FieldTableBuilder<PostgresConfig>& b) {
    b.file(&PostgresConfig::postgres, "-m,--postgres", {"postgrespath"},
           "postgres binary (default: the running server's, /proc/<pid>/exe with "
           "--pid, else the newest /usr/lib/postgresql/*/bin/postgres)")
        .text(&PostgresConfig::funcname,
              {.flag = "-f,--funcname",
               .json = {"funcname"},
               .help = "function to hook (default: pgstat_report_activity; another function "
                       "must take the statement text as its first argument, e.g. "
                       "pg_parse_query)"});
    add_perf_reorder_rows(b);
  });
}

}  // namespace ecapture::postgres
