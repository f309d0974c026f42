// postgres module: server discovery, probe specs, BPF load/attach, delivery.
#include "modules/postgres/postgres_module.h"

#include <glob.h>

#include <algorithm>
#include <regex>

#include "bpf/skeleton.h"
#include "events/audit_event.h"
#include "core/clock.h"
#include "elf/elf_file.h"
#include "elf/process_discovery.h"

namespace ecapture::postgres {
namespace {

// "PostgreSQL 15.18 ..." from the binary's .rodata ("postgres (PostgreSQL) 15.18" is built at
// run time from PG_VERSION).
std::string sniff_version(const elf::ElfFile& elf) {
  auto rodata = elf.section_data(".rodata");
  std::string_view bytes(reinterpret_cast<const char*>(rodata.data()), rodata.size());
  static const std::regex kVersion(R"(PostgreSQL (\d+\.\d+) (\(|on ))");
  std::match_results<std::string_view::const_iterator> m;
  if (std::regex_search(bytes.begin(), bytes.end(), m, kVersion)) return m[1].str();
  return "";
}

}  // namespace

std::string PostgresModule::locate_server(const PostgresConfig& cfg) {
  if (!cfg.postgres.empty()) return cfg.postgres;
  if (cfg.global.pid != 0) return elf::process_exe(static_cast<int>(cfg.global.pid));
  auto running = elf::find_running({"postgres"});
  if (!running.empty()) return running.front().path;
  glob_t g{};
  std::string found;
  if (::glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0) {
    std::vector<std::string> paths(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    // Newest major version: compare the numeric directory names.
    auto major = [](const std::string& p) {
      auto start = std::string("/usr/lib/postgresql/").size();
      return std::atoi(p.c_str() + start);
    };
    std::sort(paths.begin(), paths.end(),
              [&](const std::string& a, const std::string& b) { return major(a) < major(b); });
    found = paths.back();
  }
  globfree(&g);
  return found;
}

Result<void> PostgresModule::on_init() {
  const auto& cfg = config_as<PostgresConfig>();
  path_ = locate_server(cfg);
  if (path_.empty()) {
    if (cfg.global.pid != 0) {
      return make_error("--pid {}: no such process (give the pid of a running postgres, or the "
                        "binary with --postgres)", cfg.global.pid);
    }
    return make_error("no PostgreSQL server found (none running, no "
                      "/usr/lib/postgresql/*/bin/postgres): pass the binary with --postgres");
  }
  auto opened = elf::ElfFile::open(path_);
  if (!opened) return make_error("--postgres: {}", opened.error().to_string());
  auto elf = std::move(opened).value();
  function_ = cfg.funcname.empty() ? kDefaultFunction : cfg.funcname;
  auto sym = elf->find_function(function_);
  if (!sym || !sym->defined || sym->file_offset == 0) {
    if (cfg.funcname.empty()) {
      return make_error("{} is not a PostgreSQL server: it has no {} function (pass the postgres "
                        "binary with --postgres)", path_, function_);
    }
    return make_error("--funcname {}: not exported by {} (static functions such as "
                      "exec_simple_query are invisible in a stripped binary; the default, {}, "
                      "sees every statement)", function_, path_, kDefaultFunction);
  }
  version_ = sniff_version(*elf);
  return {};
}

Result<void> PostgresModule::on_start() {
  log().info("server: {} ({}); hooking {}", path_,
             version_.empty() ? "version unknown" : "PostgreSQL " + version_, function_);
  RETURN_IF_ERROR(session().load<postgres_bpf>(skeleton_settings(),
                                                       postgres_bpf__open_opts, postgres_bpf__load,
                                                       postgres_bpf__destroy));
  const uint64_t hook = function_ == kDefaultFunction ? POSTGRES_HOOK_ACTIVITY
                                                      : POSTGRES_HOOK_TEXT_ARG0;
  std::vector<bpf::ProbeSpec> specs = {
      {path_, function_, 0, "probe_postgres_enter", bpf::ProbeType::kUprobe, false, hook}};
  RETURN_IF_ERROR(session().attach(specs, attach_pid(),
                                   "is this a PostgreSQL server? pass it with --postgres"));
  return {};
}

Result<void> PostgresModule::on_run() {
  const auto& cfg = config_as<PostgresConfig>();
  assembler_ = std::make_unique<StatementAssembler>(monotonic_to_wall_ns(), [this](AuditEvent&& e) {
    deliver_audit(counters_mut(), ctx().sink, e);
  });
  RETURN_IF_ERROR(start_reading(
      [this](std::span<const uint8_t> r) { return assembler_->add(r); }));
  log_started(fmt::format("{}{}", path_,
                          cfg.global.pid ? fmt::format(", pid {}", cfg.global.pid) : ""));
  return {};
}

void PostgresModule::on_drained() {
  if (assembler_) {
    assembler_->flush();
    if (uint64_t n = assembler_->ignored_parallel_workers(); n > 0) {
      log().debug("postgres: {} reports of parallel workers (repeating their leader's "
                  "statement) ignored", n);
    }
  }
}

ModuleInfo module_entry() {
  return make_entry<PostgresConfig>(
      "postgres", {},
      "audit PostgreSQL: every statement (simple and extended protocol) with its full text and "
      "duration",
      {"/postgres", "/postgress"}, "postgres", [] { return ModulePtr(new PostgresModule()); });
}

}  // namespace ecapture::postgres
