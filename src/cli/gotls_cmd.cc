// `ecapture gotls` (alias `tlsgo`).
#include "cli/cli.h"
#include "modules/gotls/gotls_config.h"

namespace ecapture::cli {

Command add_gotls_command(CLI::App& root) {
  auto cfg = std::make_shared<gotls::GoTlsConfig>();
  CLI::App* app = root.add_subcommand(
      "gotls", "capture TLS plaintext and keys of Go programs (crypto/tls), stripped or not");
  app->alias("tlsgo");
  app->add_option("-e,--elfpath", cfg->elfpath, "the Go program to hook (required)");
  app->add_option("-m,--model", cfg->model, "capture mode: text, keylog, pcap (pcapng)")
      ->default_str("text");
  app->add_option("-k,--keylogfile", cfg->keylogfile, "key log file (keylog mode)")
      ->default_str(cfg->keylogfile);
  app->add_option("-w,--pcapfile", cfg->pcapfile, "pcapng file (pcap mode)")
      ->default_str(cfg->pcapfile);
  app->add_option("-i,--ifname", cfg->ifname, "interface to capture packets on (pcap mode)");
  auto filter = std::make_shared<std::vector<std::string>>();
  app->add_option("filter", *filter, "pcap filter expression (pcap mode), e.g. tcp port 443");
  Command c;
  c.app = app;
  c.module = "gotls";
  c.make_config = [cfg, filter](const GlobalConfig& g) -> std::unique_ptr<ModuleConfig> {
    auto out = std::make_unique<gotls::GoTlsConfig>(*cfg);
    out->global = g;
    std::string joined;
    for (const auto& part : *filter) joined += (joined.empty() ? "" : " ") + part;
    out->pcap_filter = joined;
    return out;
  };
  return c;
}

}  // namespace ecapture::cli
