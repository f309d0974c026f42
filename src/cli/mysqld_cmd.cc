// `ecapture mysqld`.
#include "cli/cli.h"
#include "modules/mysqld/mysqld_config.h"

namespace ecapture::cli {

Command add_mysqld_command(CLI::App& root) {
  auto cfg = std::make_shared<mysqld::MysqldConfig>();
  CLI::App* app = root.add_subcommand(
      "mysqld", "audit MySQL/MariaDB: every command (COM_QUERY, COM_STMT_PREPARE, "
                "COM_STMT_EXECUTE, ...) with its full text, error status and duration");
  app->add_option("-m,--mysqld", cfg->mysqld,
                  "mysqld/mariadbd binary (default: the running server's, /proc/<pid>/exe with "
                  "--pid, else /usr/sbin/mariadbd)");
  app->add_option("-f,--funcname", cfg->funcname,
                  "function to hook (default: the exported dispatch_command)");
  app->add_option("--offset", cfg->offset,
                  "address of dispatch_command as nm shows it, for binaries without the symbol")
      ->default_str("0");
  return make_command(app, "mysqld", cfg);
}

}  // namespace ecapture::cli
