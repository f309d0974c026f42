// The mysqld module: every command a MySQL/MariaDB server dispatches (dispatch_command), with its
// text, outcome and duration.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "bpf/probe_spec.h"
#include "core/module.h"
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
  std::string error_symbol;  // what sends error packets, empty when not found
  uint64_t error_errno_arg = 0;  // position of its sql_errno argument
};

class MysqldModule final : public Module {
 public:
  MysqldModule() : Module("mysqld") {}

  // --mysqld, else /proc/<--pid>/exe, else a running mariadbd/mysqld, else /usr/sbin/mariadbd.
  static std::string locate_server(const MysqldConfig& cfg);
  // Opens the binary and decides what to hook; errors say why it is not a usable server.
  static Result<ServerTarget> inspect(const std::string& path, const MysqldConfig& cfg);
  static std::vector<bpf::ProbeSpec> probes(const ServerTarget& t);

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_stop() override;
  void on_close() override;

 private:
  void handle_record(std::span<const uint8_t> record);

  ServerTarget target_;
  bool ringbuf_ = true;
  struct SkelDeleter {
    void operator()(mysqld_bpf* s) const;
  };
  std::unique_ptr<mysqld_bpf, SkelDeleter> skel_;
  std::vector<bpf::Link> links_;
  std::unique_ptr<bpf::EventReader> reader_;
  std::unique_ptr<CommandAssembler> assembler_;
  uint64_t decode_errors_ = 0;
};

}  // namespace ecapture::mysqld
