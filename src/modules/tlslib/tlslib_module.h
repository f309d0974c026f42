// The gnutls and nss modules: plaintext of GnuTLS (gnutls_record_send/recv) and NSS/NSPR
// (PR_Write/PR_Send/PR_Read/PR_Recv on SSL-layer descriptors) calls, through the shared TLS
// data path (bpf/include/tls_data.bpf.h) and the OpenSSL module's chunk reassembly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "bpf/probe_spec.h"
#include "core/module.h"
#include "modules/openssl/openssl_config.h"
#include "modules/openssl/openssl_events.h"
#include "modules/tlslib/gnutls_keys.h"
#include "modules/tlslib/tlslib_config.h"
#include "modules/openssl/tls_capture.h"
#include "output/tls_key_output.h"
#include "tlslib.skel.h"

namespace ecapture::tlslib {

enum class LibKind { kGnutls, kNss };

class TlsLibModule final : public Module {
 public:
  explicit TlsLibModule(LibKind kind)
      : Module(kind == LibKind::kGnutls ? "gnutls" : "nss"), kind_(kind) {}

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
  void on_stop() override;
  void on_close() override;

 private:
  const GlobalConfig& global() const { return config_as<ModuleConfig>().global; }
  const char* flag() const { return kind_ == LibKind::kGnutls ? "--gnutls" : "--nspr"; }
  bool handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  void deliver(DataEvent&& e);
  void handle_keys(std::span<const uint8_t> record);
  Result<void> init_keys(const GnutlsConfig& cfg);

  LibKind kind_;
  std::string lib_path_;
  openssl::CaptureMode mode_ = openssl::CaptureMode::kText;
  GnutlsNamedLayout layout_;
  bool ringbuf_ = true;
  struct SkelDeleter {
    void operator()(tlslib_bpf* s) const;
  };
  std::unique_ptr<tlslib_bpf, SkelDeleter> skel_;
  openssl::TlsCapture tls_;  // links, reader, assembler, key output
  uint64_t decode_errors_ = 0;
};

}  // namespace ecapture::tlslib
