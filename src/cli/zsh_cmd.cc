// `ecapture zsh`.
#include "cli/cli.h"
#include "modules/shell/shell_config.h"

namespace ecapture::cli {

Command add_zsh_command(CLI::App& root) {
  auto cfg = std::make_shared<shell::ZshConfig>();
  auto errnumber = std::make_shared<int>(0);
  CLI::App* app = root.add_subcommand(
      "zsh", "capture the commands typed into interactive zsh shells, with their exit status");
  app->add_option("--zsh", cfg->zsh,
                  "zsh executable to watch (default: $SHELL if it is zsh, else /bin/zsh)");
  CLI::Option* e = app->add_option(
      "-e,--errnumber", *errnumber,
      "show only commands whose exit status is N (0-255; default: every command)");
  return make_command(app, "zsh", cfg, [errnumber, e](shell::ZshConfig& out) {
    if (e->count() > 0) out.errnumber = *errnumber;
  });
}

}  // namespace ecapture::cli
