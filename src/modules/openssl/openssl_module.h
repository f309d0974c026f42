// The tls/openssl module: plaintext of OpenSSL and BoringSSL calls, from a shared library or a
// static executable that exports SSL_* (node).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "elf/elf_file.h"
#include "elf/version_sniff.h"
#include "modules/openssl/openssl_config.h"
#include "modules/openssl/openssl_layouts.h"
#include "tls/tls_module.h"
#include "openssl.skel.h"

namespace ecapture::openssl {

// The registry entry of the tls (openssl) module.
ModuleInfo module_entry();

using tls::CaptureMode;

class OpenSslModule final : public tls::TlsModule {
 public:
  OpenSslModule() : TlsModule("tls", "openssl") {}

  // Resolves the library to hook: --libssl, else the loader's search path.
  static Result<std::string> locate_library(const OpenSslConfig& cfg);
  // The probes for the data path of `binary`.
  static std::vector<bpf::ProbeSpec> data_probes(const std::string& binary);
  // The probes for key capture (keylog and pcap modes).
  static std::vector<bpf::ProbeSpec> key_probes(const std::string& binary);
  // BoringSSL keeps no secrets after the handshake: they are taken from libcrypto's derivations.
  static std::vector<bpf::ProbeSpec> boringssl_key_probes(const std::string& ssl,
                                                          const std::string& crypto);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;

 private:
  // Compares the chosen layout with the library's accessors (code_offsets.h); a mismatch is an
  // error unless the layout was forced with --ssl_version.
  Result<void> check_layout(const elf::ElfFile& elf, bool forced);
  Result<bool> handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  Result<void> handle_keys(std::span<const uint8_t> record);
  Result<void> handle_secret(std::span<const uint8_t> record);

  std::string lib_path_;
  std::optional<elf::SslVersion> version_;
  std::string version_error_;
  CaptureMode mode_ = CaptureMode::kText;
  NamedLayout layout_;
  std::string crypto_path_;   // BoringSSL keys: the file defining HKDF_expand/CRYPTO_tls1_prf
  std::string offsets_note_;  // BoringSSL keys: where the client-random offsets came from
};

}  // namespace ecapture::openssl
