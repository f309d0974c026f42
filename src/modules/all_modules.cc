// The explicit list of every capture module ecapture ships.
#include <cstdlib>

#include "core/registry.h"
#include "modules/openssl/openssl_config.h"
#include "modules/mysqld/mysqld_module.h"
#include "modules/openssl/openssl_module.h"
#include "modules/gotls/gotls_module.h"
#include "modules/postgres/postgres_module.h"
#include "modules/shell/shell_module.h"
#include "modules/tlslib/tlslib_config.h"
#include "modules/tlslib/tlslib_module.h"

namespace ecapture {

const ModuleRegistry& builtin_registry() {
  static const ModuleRegistry registry = [] {
    ModuleRegistry r;
    auto add = [&r](ModuleInfo info) {
      if (auto res = r.add(std::move(info)); !res) {
        std::fprintf(stderr, "ecapture: internal error: %s\n", res.error().to_string().c_str());
        std::abort();
      }
    };
    add({"tls", {"openssl"}, "capture TLS plaintext from OpenSSL and BoringSSL",
         [] { return ModulePtr(new openssl::OpenSslModule()); }, openssl::config_from_json});
    add({"gotls", {"tlsgo"}, "capture TLS plaintext and keys of Go programs (crypto/tls)",
         [] { return ModulePtr(new gotls::GoTlsModule()); }, gotls::config_from_json});
    add({"gnutls", {"gnu"}, "capture TLS plaintext from GnuTLS",
         [] { return ModulePtr(new tlslib::TlsLibModule(tlslib::LibKind::kGnutls)); },
         tlslib::gnutls_config_from_json});
    add({"nss", {"nspr"}, "capture TLS plaintext from NSS/NSPR",
         [] { return ModulePtr(new tlslib::TlsLibModule(tlslib::LibKind::kNss)); },
         tlslib::nss_config_from_json});
    add({"bash", {}, "audit the commands typed into interactive bash shells",
         [] { return ModulePtr(new shell::ShellModule(shell::ShellKind::kBash)); },
         shell::bash_config_from_json});
    add({"zsh", {}, "audit the commands typed into interactive zsh shells",
         [] { return ModulePtr(new shell::ShellModule(shell::ShellKind::kZsh)); },
         shell::zsh_config_from_json});
    add({"mysqld", {}, "audit every command a MySQL/MariaDB server executes",
         [] { return ModulePtr(new mysqld::MysqldModule()); }, mysqld::config_from_json});
    add({"postgres", {}, "audit every statement a PostgreSQL server executes",
         [] { return ModulePtr(new postgres::PostgresModule()); }, postgres::config_from_json});
    return r;
  }();
  return registry;
}

}  // namespace ecapture
