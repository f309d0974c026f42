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
  auto filter = add_tls_mode_flags(app, *cfg);
  app->add_option("--ssl_version", cfg->ssl_version,
                  "GnuTLS version whose session layout to use (3.6.4-3.8.13), e.g. \"3.7.9\" "
                  "(keys only; default: read from the library)");
  return make_command(app, "gnutls", cfg, [filter](tlslib::GnutlsConfig& out) {
    out.pcap_filter = join_words(*filter);
  });
}

}  // namespace ecapture::cli
