// `ecapture gnutls` (alias `gnu`).
#include "cli/cli.h"
#include "modules/tlslib/tlslib_config.h"

namespace ecapture::cli {

Command add_gnutls_command(CLI::App& root) {
  auto cfg = std::make_shared<tlslib::GnutlsConfig>();
  CLI::App* app = root.add_subcommand("gnutls", "capture TLS plaintext from GnuTLS programs");
  app->alias("gnu");
  app->add_option("--gnutls", cfg->gnutls,
                  "libgnutls.so file (default: libgnutls.so.30 found through /etc/ld.so.conf "
                  "and the ld cache)");
  app->add_option("-m,--model", cfg->model, "capture mode: text, keylog (key), pcap (pcapng)")
      ->default_str("text");
  app->add_option("-k,--keylogfile", cfg->keylogfile, "key log file (keylog mode)")
      ->default_str(cfg->keylogfile);
  app->add_option("-w,--pcapfile", cfg->pcapfile, "pcapng file (pcap mode)")
      ->default_str(cfg->pcapfile);
  app->add_option("-i,--ifname", cfg->ifname, "interface to capture packets on (pcap mode)");
  app->add_option("--ssl_version", cfg->ssl_version,
                  "GnuTLS version whose session layout to use (3.6.4-3.8.13), e.g. \"3.7.9\" "
                  "(keys only; default: read from the library)");
  auto filter = std::make_shared<std::vector<std::string>>();
  app->add_option("filter", *filter, "pcap filter expression (pcap mode), e.g. tcp port 443");
  Command c;
  c.app = app;
  c.module = "gnutls";
  c.make_config = [cfg, filter](const GlobalConfig& g) -> std::unique_ptr<ModuleConfig> {
    auto out = std::make_unique<tlslib::GnutlsConfig>(*cfg);
    out->global = g;
    std::string joined;
    for (const auto& part : *filter) joined += (joined.empty() ? "" : " ") + part;
    out->pcap_filter = joined;
    return out;
  };
  return c;
}

}  // namespace ecapture::cli
