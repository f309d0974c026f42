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
  auto filter = add_tls_mode_flags(app, *cfg);
  app->add_option("--ssl_version", cfg->ssl_version,
                  "struct layout to use for keys, e.g. \"openssl 3.0.19\" or \"boringssl\" "
                  "(default: from the version found in the library)");
  return make_command(app, "tls", cfg, [filter](openssl::OpenSslConfig& out) {
    out.pcap_filter = join_words(*filter);
  });
}

}  // namespace ecapture::cli
