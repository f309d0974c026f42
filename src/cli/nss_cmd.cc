// `ecapture nss` (alias `nspr`).
#include "cli/cli.h"
#include "modules/tlslib/tlslib_config.h"

namespace ecapture::cli {

Command add_nss_command(CLI::App& root) {
  auto cfg = std::make_shared<tlslib::NssConfig>();
  CLI::App* app = root.add_subcommand(
      "nss", "capture TLS plaintext from NSS/NSPR programs (Firefox, tstclnt, ...)");
  app->alias("nspr");
  app->add_option("--nspr", cfg->nspr,
                  "libnspr4.so file (default: found through /etc/ld.so.conf and the ld cache)");
  return make_command(app, "nss", cfg);
}

}  // namespace ecapture::cli
