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
  Command c;
  c.app = app;
  c.module = "gotls";
  c.make_config = [cfg, filter](const GlobalConfig& g) -> std::unique_ptr<ModuleConfig> {
    auto out = std::make_unique<gotls::GoTlsConfig>(*cfg);
    out->global = g;
    out->pcap_filter = join_words(*filter);
    return out;
  };
  return c;
}

}  // namespace ecapture::cli
