// `ecapture bash`.
#include "cli/cli.h"
#include "modules/shell/shell_config.h"

namespace ecapture::cli {

Command add_bash_command(CLI::App& root) {
  auto cfg = std::make_shared<shell::BashConfig>();
  auto errnumber = std::make_shared<int>(0);
  CLI::App* app = root.add_subcommand(
      "bash", "capture the commands typed into interactive bash shells, with their exit status");
  app->add_option("--bash", cfg->bash,
                  "bash executable to watch (default: $SHELL if it is bash, else /bin/bash)");
  app->add_option("--readlineso", cfg->readlineso,
                  "readline library, when bash links it dynamically (default: bash's own "
                  "readline, else its DT_NEEDED libreadline.so)");
  CLI::Option* e = app->add_option(
      "-e,--errnumber", *errnumber,
      "show only commands whose exit status is N (0-255; default: every command)");
  return make_command(app, "bash", cfg, [errnumber, e](shell::BashConfig& out) {
    if (e->count() > 0) out.errnumber = *errnumber;
  });
}

}  // namespace ecapture::cli
