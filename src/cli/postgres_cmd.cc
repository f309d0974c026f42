// `ecapture postgres`.
#include "cli/cli.h"
#include "modules/postgres/postgres_config.h"

namespace ecapture::cli {

Command add_postgres_command(CLI::App& root) {
  auto cfg = std::make_shared<postgres::PostgresConfig>();
  CLI::App* app = root.add_subcommand(
      "postgres", "audit PostgreSQL: every statement (simple and extended protocol) with its "
                  "full text and duration");
  app->add_option("-m,--postgres", cfg->postgres,
                  "postgres binary (default: the running server's, /proc/<pid>/exe with --pid, "
                  "else the newest /usr/lib/postgresql/*/bin/postgres)");
  app->add_option("-f,--funcname", cfg->funcname,
                  "function to hook (default: pgstat_report_activity; another function must "
                  "take the statement text as its first argument, e.g. pg_parse_query)");
  return make_command(app, "postgres", cfg);
}

}  // namespace ecapture::cli
