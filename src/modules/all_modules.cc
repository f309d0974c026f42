// The explicit list of every capture module ecapture ships.
#include <cstdlib>

#include "core/registry.h"
#include "modules/openssl/openssl_module.h"

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
         [] { return ModulePtr(new openssl::OpenSslModule()); }});
    return r;
  }();
  return registry;
}

}  // namespace ecapture
