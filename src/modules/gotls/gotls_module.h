// The gotls module: plaintext and keys of Go programs using crypto/tls, found through .symtab or
// the Go line table (stripped, PIE and static binaries alike).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "elf/go_binary.h"
#include "gotls.skel.h"
#include "modules/gotls/gotls_abi.h"
#include "modules/gotls/gotls_config.h"
#include "tls/target_set.h"
#include "tls/tls_module.h"

namespace ecapture::gotls {

inline constexpr const char* kWriteRecordLocked = "crypto/tls.(*Conn).writeRecordLocked";
inline constexpr const char* kConnRead = "crypto/tls.(*Conn).Read";
inline constexpr const char* kWriteKeyLog = "crypto/tls.(*Config).writeKeyLog";
inline constexpr const char* kClientHandshake = "crypto/tls.(*Conn).clientHandshake";
inline constexpr const char* kServerHandshake = "crypto/tls.(*Conn).serverHandshake";

using tls::CaptureMode;

// The registry entry of the gotls module.
ModuleInfo module_entry();

// Where the hooks of one Go binary go.
struct GoTlsTargets {
  elf::GoVersion version;
  bool register_abi = true;
  uint64_t write_record = 0;         // file offset of writeRecordLocked
  uint64_t read_entry = 0;           // file offset of (*Conn).Read
  std::vector<uint64_t> read_rets;   // file offsets of its RET instructions
  uint64_t write_key_log = 0;        // file offset of writeKeyLog
  std::vector<uint64_t> handshakes;  // clientHandshake/serverHandshake entries (optional)
  bool stripped = false;             // found through pclntab
};

// Analyses `path` (errors: not ELF, wrong arch, not Go, no crypto/tls, old unsupported ABI).
Result<GoTlsTargets> find_targets(const std::string& path, CaptureMode mode);
Result<GoTlsTargets> find_targets(const elf::GoBinary& bin, CaptureMode mode);

// What the host-wide mode makes of one file: a Go program using crypto/tls is hooked, one that
// cannot be (old ABI, functions missing) is listed with the reason, anything else is no target.
tls::TargetPlan plan_go_target(const std::string& host_path, CaptureMode mode);

// The executables of the running processes (ecapture's own left out), one per file.
std::vector<tls::Target> executable_targets();

// One key log line from a writeKeyLog record ("LABEL <random hex> <secret hex>").
Result<KeylogLine> keylog_line(const gotls_keys_event& k);

class GoTlsModule final : public tls::TlsModule {
 public:
  GoTlsModule() : TlsModule("gotls", "gotls") {}

  static std::vector<bpf::ProbeSpec> probes(const std::string& binary, const GoTlsTargets& t,
                                            CaptureMode mode);
  // Each program hooked, with its version and processes, and each one that could not be.

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;

 private:
  Result<bool> handle_own_record(std::span<const uint8_t> record);  // keys; false for plaintext
  Result<void> init_one(const GoTlsConfig& cfg);                    // -e or --pid
  Result<void> start_host_wide(std::shared_ptr<tls::TargetWatcher> watcher, int attach_pid);
  // -e or --pid: the one program's entry.
  nlohmann::json single_target_report() const override;

  CaptureMode mode_ = CaptureMode::kText;
  // -e or --pid: the one program, fixed from init on.
  std::string elf_path_;
  GoTlsTargets hooks_;
  // Otherwise: every Go program in use, now and later.
};

}  // namespace ecapture::gotls
