// postgres module: server discovery, probe specs, BPF load/attach, delivery.
#include "modules/postgres/postgres_module.h"

#include <glob.h>

#include <algorithm>
#include <regex>

#include "bpf/skeleton.h"
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

void PostgresModule::SkelDeleter::operator()(postgres_bpf* s) const { postgres_bpf__destroy(s); }

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
  const auto& cfg = config_as<PostgresConfig>();
  log().info("server: {} ({}); hooking {}", path_,
             version_.empty() ? "version unknown" : "PostgreSQL " + version_, function_);
  bpf::SkeletonSettings settings{"postgres", btf().custom_path,
                                 static_cast<uint32_t>(cfg.global.pid),
                                 static_cast<uint32_t>(cfg.global.uid), cfg.global.mapsize};
  bpf::LoadedSkeleton loaded;
  ASSIGN_OR_RETURN(auto* skel, bpf::open_and_load<postgres_bpf>(
                                   settings, log(), postgres_bpf__open_opts, postgres_bpf__load,
                                   postgres_bpf__destroy, &loaded));
  skel_.reset(skel);
  ringbuf_ = loaded.ringbuf;
  const bool multi = loaded.uprobe_multi;
  const uint64_t hook = function_ == kDefaultFunction ? POSTGRES_HOOK_ACTIVITY
                                                      : POSTGRES_HOOK_TEXT_ARG0;
  std::vector<bpf::ProbeSpec> specs = {
      {path_, function_, 0, "probe_postgres_enter", bpf::ProbeType::kUprobe, false, hook}};
  int pid = cfg.global.pid != 0 ? static_cast<int>(cfg.global.pid) : -1;
  ASSIGN_OR_RETURN(auto attached,
                   bpf::attach_uprobes(skel_->obj, specs, pid,
                                       "is this a PostgreSQL server? pass it with --postgres",
                                       multi));
  for (auto& l : attached.links) links_.push_back(std::move(l));
  return {};
}

Result<void> PostgresModule::on_run() {
  const auto& cfg = config_as<PostgresConfig>();
  assembler_ = std::make_unique<StatementAssembler>(monotonic_to_wall_ns(), [this](AuditEvent&& e) {
    counters_mut().events.fetch_add(1);
    counters_mut().bytes.fetch_add(e.text.size());
    if (ctx().sink != nullptr) ctx().sink->emit_audit(e);
  });
  ASSIGN_OR_RETURN(reader_, bpf::EventReader::create(
                                skel_->maps.events, ringbuf_, cfg.global.mapsize,
                                [this](std::span<const uint8_t> r) { handle_record(r); }));
  reader_->start();
  log().info("postgres: capture started ({}{})", path_,
             cfg.global.pid ? fmt::format(", pid {}", cfg.global.pid) : "");
  return {};
}

void PostgresModule::handle_record(std::span<const uint8_t> record) {
  if (auto r = assembler_->add(record); !r) {
    if (decode_errors_++ == 0) log().warn("postgres: {}", r.error().to_string());
  }
}

void PostgresModule::on_stop() {
  bpf::destroy_links(links_);
  if (reader_) reader_->stop();
  if (assembler_) {
    assembler_->flush();
    if (uint64_t n = assembler_->ignored_parallel_workers(); n > 0) {
      log().debug("postgres: {} reports of parallel workers (repeating their leader's "
                  "statement) ignored", n);
    }
  }
  counters_mut().lost.store(
      bpf::lost_records(skel_ ? skel_->maps.ecap_counters : nullptr, reader_.get()));
  counters_mut().map_failed.store(
      bpf::map_update_failures(skel_ ? skel_->maps.ecap_counters : nullptr));
}

void PostgresModule::on_close() {
  bpf::destroy_links(links_);
  reader_.reset();
  assembler_.reset();
  skel_.reset();
}

}  // namespace ecapture::postgres
