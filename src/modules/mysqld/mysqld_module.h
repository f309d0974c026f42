// The mysqld module: every command a MySQL/MariaDB server dispatches (dispatch_command), with its
// text, outcome and duration.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/capture_module.h"
#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "modules/mysqld/mysqld_config.h"
#include "modules/mysqld/mysqld_events.h"
#include "mysqld.skel.h"

namespace ecapture::mysqld {

// What on_init found out about the server binary.
struct ServerTarget {
  std::string path;
  std::string symbol;   // hooked symbol; empty with --offset
  uint64_t offset = 0;  // file offset of the hooked function
  mysqld_abi abi = MYSQLD_ABI_LEGACY;
  std::optional<ServerVersion> version;
  std::string error_symbol;      // what sends error packets, empty when not found
  uint64_t error_errno_arg = 0;  // position of its sql_errno argument
};

// The registry entry of the mysqld module.
ModuleInfo module_entry();

class MysqldModule final : public bpf::CaptureModule {
 public:
  MysqldModule() : CaptureModule("mysqld") {}

  // --mysqld, else /proc/<--pid>/exe, else a running mariadbd/mysqld, else /usr/sbin/mariadbd.
  static std::string locate_server(const MysqldConfig& cfg);
  // Opens the binary and decides what to hook; errors say why it is not a usable server.
  static Result<ServerTarget> inspect(const std::string& path, const MysqldConfig& cfg);
  static std::vector<bpf::ProbeSpec> probes(const ServerTarget& t);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_release() override { assembler_.reset(); }

 private:
  ServerTarget target_;
  std::unique_ptr<CommandAssembler> assembler_;
};

}  // namespace ecapture::mysqld
