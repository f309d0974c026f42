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
#include "openssl.skel.h"
#include "tls/target_set.h"
#include "tls/tls_module.h"

namespace ecapture::openssl {

// The registry entry of the tls (openssl) module.
ModuleInfo module_entry();

using tls::CaptureMode;

// One library (or static executable) and what hooking it takes: its version and, for keys, the
// struct layout (and BoringSSL's libcrypto).
struct LibraryPlan {
  std::string path;
  std::optional<elf::SslVersion> version;
  std::string version_error;
  NamedLayout layout;
  std::string crypto_path;   // BoringSSL keys: the file defining HKDF_expand/CRYPTO_tls1_prf
  std::string offsets_note;  // keys: how the layout was checked
};

class OpenSslModule final : public tls::TlsModule {
 public:
  OpenSslModule() : TlsModule("tls", "openssl") {}

  // Resolves the library to hook: --libssl, else (with --pid) what the process maps, else the
  // loader's search path. Without --libssl and --pid the module hooks every library in use.
  static Result<std::string> locate_library(const OpenSslConfig& cfg);
  // The probes for the data path of `binary`; `slot` (bits 8-15 of every cookie) names the
  // library's entry in the BPF side's `layouts` map.
  static std::vector<bpf::ProbeSpec> data_probes(const std::string& binary, int slot = 0);
  // The probes for key capture (keylog and pcap modes).
  static std::vector<bpf::ProbeSpec> key_probes(const std::string& binary, int slot = 0);
  // BoringSSL keeps no secrets after the handshake: they are taken from libcrypto's derivations.
  static std::vector<bpf::ProbeSpec> boringssl_key_probes(const std::string& ssl,
                                                          const std::string& crypto, int slot = 0);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;

 private:
  // Version and (keys) layout of the library at `path`, which exports SSL_write/SSL_read.
  Result<LibraryPlan> plan_library(const elf::ElfFile& elf) const;
  // Compares the chosen layout with the library's accessors (code_offsets.h); a mismatch is an
  // error unless the layout was forced with --ssl_version.
  static Result<void> check_layout(const elf::ElfFile& elf, bool forced, LibraryPlan& plan);
  std::vector<bpf::ProbeSpec> probes(const LibraryPlan& plan, int slot) const;
  Result<void> set_layout(int slot, const openssl_layout& layout);
  // Host-wide mode: what to make of one file some process uses.
  tls::TargetPlan plan_target(const std::string& host_path, int slot);
  bool all_processes() const { return mode_ == CaptureMode::kPcap; }
  Result<bool> handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  Result<void> handle_keys(std::span<const uint8_t> record);
  Result<void> handle_secret(std::span<const uint8_t> record);
  // --libssl or --pid: the one library's entry.
  nlohmann::json single_target_report() const override;

  CaptureMode mode_ = CaptureMode::kText;
  LibraryPlan lib_;  // one target (--libssl, --pid)
  bool host_wide_ = false;
  openssl_bpf* skel_ = nullptr;
};

}  // namespace ecapture::openssl
