// `ecapture gotls` (alias `tlsgo`).
#include "cli/cli.h"
#include "modules/gotls/gotls_config.h"

namespace ecapture::cli {

Command add_gotls_command(CLI::App& root) {
  auto cfg = std::make_shared<gotls::GoTlsConfig>();
  CLI::App* app = root.add_subcommand(
      "gotls", "capture TLS plaintext and keys of Go programs (crypto/tls), stripped or not");
  app->alias("tlsgo");
  app->add_option("-e,--elfpath", cfg->elfpath, "the Go program to hook (default with --pid: that process's executable)");
  auto filter = add_tls_mode_flags(app, *cfg);
  return make_command(app, "gotls", cfg, [filter](gotls::GoTlsConfig& out) {
    out.pcap_filter = join_words(*filter);
  });
}

}  // namespace ecapture::cli
