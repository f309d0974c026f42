// The postgres module: every statement a PostgreSQL backend runs (simple and extended protocol),
// with its full text and duration.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/capture_module.h"
#include "bpf/probe_spec.h"
#include "core/registry.h"
#include "modules/postgres/postgres_config.h"
#include "modules/postgres/postgres_events.h"
#include "postgres.skel.h"

namespace ecapture::postgres {

// The registry entry of the postgres module.
ModuleInfo module_entry();

class PostgresModule final : public bpf::CaptureModule {
 public:
  PostgresModule() : CaptureModule("postgres") {}

  // --postgres, else /proc/<--pid>/exe, else a running postgres, else the newest
  // /usr/lib/postgresql/*/bin/postgres. Empty when none is found.
  static std::string locate_server(const PostgresConfig& cfg);
  static constexpr const char* kDefaultFunction = "pgstat_report_activity";

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_drained() override;
  void on_release() override { assembler_.reset(); }

 private:
  std::string path_;
  std::string function_;
  std::string version_;
  std::unique_ptr<StatementAssembler> assembler_;
};

}  // namespace ecapture::postgres
