// The gnutls and nss modules: plaintext of GnuTLS (gnutls_record_send/recv) and NSS/NSPR
// (PR_Write/PR_Send/PR_Read/PR_Recv on SSL-layer descriptors) calls, through the shared TLS
// data path (bpf/include/tls_data.bpf.h) and the TLS layer (src/tls).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "modules/tlslib/gnutls_keys.h"
#include "modules/tlslib/tlslib_config.h"
#include "tls/tls_module.h"
#include "tlslib.skel.h"

namespace ecapture::tlslib {

enum class LibKind { kGnutls, kNss };

// The registry entries of the gnutls and nss modules.
ModuleInfo gnutls_entry();
ModuleInfo nss_entry();
class TlsLibModule final : public tls::TlsModule {
 public:
  explicit TlsLibModule(LibKind kind)
      : TlsModule(kind == LibKind::kGnutls ? "gnutls" : "nss",
                  kind == LibKind::kGnutls ? "gnutls" : "nss"),
        kind_(kind) {}

  // The library to hook: the flag's path, else the loader's search path.
  static Result<std::string> locate_library(LibKind kind, const std::string& flag_path,
                                            uint64_t pid = 0);
  // Checks that `path` is a library of `kind` (exports the hooked functions).
  static Result<void> check_library(LibKind kind, const std::string& path, bool from_flag);
  // The probes of the data path in `binary`.
  static std::vector<bpf::ProbeSpec> data_probes(LibKind kind, const std::string& binary);
  // The probes of GnuTLS key capture (gnutls_handshake entry and return).
  static std::vector<bpf::ProbeSpec> key_probes(const std::string& binary);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;

 private:
  const GlobalConfig& global() const { return config_as<ModuleConfig>().global; }
  const char* flag() const { return kind_ == LibKind::kGnutls ? "--gnutls" : "--nspr"; }
  Result<bool> handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  Result<void> init_keys(const GnutlsConfig& cfg);

  LibKind kind_;
  std::string lib_path_;
  tls::CaptureMode mode_ = tls::CaptureMode::kText;
  GnutlsNamedLayout layout_;
};

}  // namespace ecapture::tlslib
