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
#include "tls/target_set.h"
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

  // The library to hook: the flag's path, else (with --pid) what the process maps, else the
  // loader's search path. Without the flag and --pid the module hooks every library in use.
  static Result<std::string> locate_library(LibKind kind, const std::string& flag_path,
                                            uint64_t pid = 0);
  // Checks that `path` is a library of `kind` (exports the hooked functions).
  static Result<void> check_library(LibKind kind, const std::string& path, bool from_flag);
  // The probes of the data path in `binary`.
  static std::vector<bpf::ProbeSpec> data_probes(LibKind kind, const std::string& binary);
  // The probes of GnuTLS key capture (gnutls_handshake entry and return); `slot` (bits 8-15 of
  // the cookie) names the library's entry in the BPF side's `gnutls_layouts` map.
  static std::vector<bpf::ProbeSpec> key_probes(const std::string& binary, int slot = 0);
  // Report fields of the library at `path`: "library", "version" (or "version_error"), and for
  // NSPR the "nss" version of the libnss3.so beside it.
  static nlohmann::json library_info(LibKind kind, const std::string& path);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;

 private:
  const GlobalConfig& global() const { return config_as<ModuleConfig>().global; }
  const char* flag() const { return kind_ == LibKind::kGnutls ? "--gnutls" : "--nspr"; }
  bool keys_mode() const { return mode_ != tls::CaptureMode::kText; }
  Result<bool> handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  // The session layout of the GnuTLS at `path`: --ssl_version's, else its version string's.
  Result<GnutlsNamedLayout> layout_of(const std::string& path) const;
  Result<void> set_layout(int slot, const gnutls_layout& layout);
  std::vector<bpf::ProbeSpec> probes(const std::string& path, int slot) const;
  // Host-wide mode: what to make of one file some process uses.
  tls::TargetPlan plan_target(const std::string& host_path, int slot);
  // --gnutls/--nspr or --pid: the one library's entry.
  nlohmann::json single_target_report() const override;

  LibKind kind_;
  std::string lib_path_;  // one target (the flag, --pid)
  bool host_wide_ = false;
  tls::CaptureMode mode_ = tls::CaptureMode::kText;
  GnutlsNamedLayout layout_;  // one target, keys
  tlslib_bpf* skel_ = nullptr;
};

}  // namespace ecapture::tlslib
