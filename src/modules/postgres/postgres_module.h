// The postgres module: every statement a PostgreSQL backend runs (simple and extended protocol),
// with its full text and duration.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "bpf/probe_spec.h"
#include "core/module.h"
#include "modules/postgres/postgres_config.h"
#include "modules/postgres/postgres_events.h"
#include "postgres.skel.h"

namespace ecapture::postgres {

class PostgresModule final : public Module {
 public:
  PostgresModule() : Module("postgres") {}

  // --postgres, else /proc/<--pid>/exe, else a running postgres, else the newest
  // /usr/lib/postgresql/*/bin/postgres. Empty when none is found.
  static std::string locate_server(const PostgresConfig& cfg);
  static constexpr const char* kDefaultFunction = "pgstat_report_activity";

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_stop() override;
  void on_close() override;

 private:
  void handle_record(std::span<const uint8_t> record);

  std::string path_;
  std::string function_;
  std::string version_;
  bool ringbuf_ = true;
  struct SkelDeleter {
    void operator()(postgres_bpf* s) const;
  };
  std::unique_ptr<postgres_bpf, SkelDeleter> skel_;
  std::vector<bpf::Link> links_;
  std::unique_ptr<bpf::EventReader> reader_;
  std::unique_ptr<StatementAssembler> assembler_;
  uint64_t decode_errors_ = 0;
};

}  // namespace ecapture::postgres
