// The explicit list of every capture module ecapture ships: one entry per module, each defined in
// the module's own folder.
#include <cstdio>
#include <cstdlib>

#include "core/registry.h"
#include "modules/all/all_module.h"
#include "modules/gotls/gotls_module.h"
#include "modules/mysqld/mysqld_module.h"
#include "modules/openssl/openssl_module.h"
#include "modules/postgres/postgres_module.h"
#include "modules/shell/shell_module.h"
#include "modules/tlslib/tlslib_module.h"

namespace ecapture {

const ModuleRegistry& builtin_registry() {
  static const ModuleRegistry registry = [] {
    ModuleRegistry r;
    for (ModuleInfo info :
         {openssl::module_entry(), gotls::module_entry(), tlslib::gnutls_entry(),
          tlslib::nss_entry(), shell::bash_entry(), shell::zsh_entry(), mysqld::module_entry(),
          postgres::module_entry(), all::module_entry()}) {
      if (auto res = r.add(std::move(info)); !res) {
        std::fprintf(stderr, "ecapture: internal error: %s\n", res.error().to_string().c_str());
        std::abort();
      }
    }
    return r;
  }();
  return registry;
}

}  // namespace ecapture
