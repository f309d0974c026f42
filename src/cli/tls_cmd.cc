// `ecapture tls` (alias `openssl`).
#include "cli/cli.h"
#include "modules/openssl/openssl_config.h"

namespace ecapture::cli {

Command add_tls_command(CLI::App& root) {
  auto cfg = std::make_shared<openssl::OpenSslConfig>();
  CLI::App* app = root.add_subcommand(
      "tls", "capture TLS plaintext from OpenSSL/BoringSSL (libssl or a static executable)");
  app->alias("openssl");
  app->add_option("--libssl", cfg->libssl,
                  "libssl.so file or statically linked executable exporting SSL_* (default: "
                  "found through /etc/ld.so.conf and the ld cache)");
  app->add_option("-m,--model", cfg->model, "capture mode: text (keylog and pcap: not yet)")
      ->default_str("text");
  app->add_option("-k,--keylogfile", cfg->keylogfile, "key log file (keylog mode)")
      ->default_str(cfg->keylogfile);
  app->add_option("-w,--pcapfile", cfg->pcapfile, "pcapng file (pcap mode)")
      ->default_str(cfg->pcapfile);
  app->add_option("-i,--ifname", cfg->ifname, "interface to capture packets on (pcap mode)");
  app->add_option("--ssl_version", cfg->ssl_version,
                  "library version to assume, e.g. \"openssl 3.0.19\" (keys only)");
  auto filter = std::make_shared<std::vector<std::string>>();
  app->add_option("filter", *filter, "pcap filter expression (pcap mode), e.g. tcp port 443");
  Command c;
  c.app = app;
  c.module = "tls";
  c.make_config = [cfg, filter](const GlobalConfig& g) -> std::unique_ptr<ModuleConfig> {
    auto out = std::make_unique<openssl::OpenSslConfig>(*cfg);
    out->global = g;
    std::string joined;
    for (const auto& part : *filter) joined += (joined.empty() ? "" : " ") + part;
    out->pcap_filter = joined;
    return out;
  };
  return c;
}

}  // namespace ecapture::cli
