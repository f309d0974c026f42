// gotls module: Go binary analysis, probe specs, BPF load/attach and event delivery.
#include "modules/gotls/gotls_module.h"

#include <unistd.h>

#include <cstring>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "core/clock.h"
#include "elf/lib_discovery.h"
#include "elf/process_discovery.h"
#include "output/keylog_writer.h"

namespace ecapture::gotls {
namespace {

static_assert(sizeof(gotls_keys_event) == 224, "ABI: gotls_keys_event size");
static_assert(offsetof(gotls_keys_event, tuple) == 56, "ABI: gotls_keys_event tuple offset");
static_assert(offsetof(gotls_keys_event, label) == 96, "ABI: gotls_keys_event label offset");

constexpr const char* kHint = "is this a Go program using crypto/tls? pass it with -e/--elfpath";

}  // namespace


Result<GoTlsTargets> find_targets(const std::string& path, CaptureMode mode) {
  ASSIGN_OR_RETURN(auto bin, elf::GoBinary::open(path));
  return find_targets(*bin, mode);
}

Result<GoTlsTargets> find_targets(const elf::GoBinary& b, CaptureMode mode) {
  const elf::GoBinary* bin = &b;
  const std::string& path = b.path();
  GoTlsTargets t;
  t.version = bin->version();
  if (t.version.major == 0) {
    // No build info (rare: Go < 1.13 or a damaged file): the pclntab layout still tells 1.18+.
    if (bin->pclntab_magic() != 0xfffffff0 && bin->pclntab_magic() != 0xfffffff1) {
      return make_error("{}: its Go version is unknown (no build info) and its line table is older "
                        "than Go 1.18: cannot tell how it passes arguments", path);
    }
    t.register_abi = true;
  } else {
    t.register_abi = bin->register_abi();
  }
  auto need = [&](const char* name) -> Result<elf::GoFunction> {
    auto f = bin->find_function(name);
    if (!f) {
      return make_error("{} (Go {}) has no {}: it does not use crypto/tls, or the function was "
                        "inlined away; {}", path, t.version.text.empty() ? "?" : t.version.text,
                        name, kHint);
    }
    if (!f->from_symtab) t.stripped = true;
    return *f;
  };
  if (mode == CaptureMode::kText) {
    ASSIGN_OR_RETURN(auto w, need(kWriteRecordLocked));
    ASSIGN_OR_RETURN(auto r, need(kConnRead));
    // Past the stack check: an entry probe would see a call twice when its stack grows.
    t.write_record = bin->body_offset(w);
    t.read_entry = bin->body_offset(r);
    ASSIGN_OR_RETURN(t.read_rets, bin->ret_offsets(r));
  } else {
    ASSIGN_OR_RETURN(auto k, need(kWriteKeyLog));
    t.write_key_log = bin->body_offset(k);
    for (const char* name : {kClientHandshake, kServerHandshake}) {
      if (auto f = bin->find_function(name)) t.handshakes.push_back(bin->body_offset(*f));
    }
  }
  return t;
}

GoScan scan_running_programs(CaptureMode mode) {
  GoScan scan;
  for (elf::ExeFile& exe : elf::running_executables()) {
    ++scan.executables;
    // The section headers first: most executables are not Go, and reading them is cheap.
    auto elf = elf::ElfFile::open(exe.path);
    if (!elf || !(*elf)->is_native_arch() || !elf::has_go_sections(**elf)) continue;
    auto bin = elf::GoBinary::open(exe.path);
    if (!bin) continue;
    // A Go program with neither function does not use crypto/tls: no target.
    if (!(*bin)->find_function(kConnRead) && !(*bin)->find_function(kWriteKeyLog)) continue;
    auto hooks = find_targets(**bin, mode);
    if (hooks && !hooks->register_abi) {
      hooks = make_error("built with {}, which passes arguments on the stack: not supported yet",
                         hooks->version.text);
    }
    if (!hooks) {
      scan.unusable.emplace_back(exe.path, hooks.error().to_string());
      continue;
    }
    scan.programs.push_back({std::move(exe.path), std::move(hooks).value(), std::move(exe.pids)});
  }
  return scan;
}

Result<KeylogLine> keylog_line(const gotls_keys_event& k) {
  if (k.label_len == 0 || k.label_len > GOTLS_LABEL_MAX || k.random_len != GOTLS_RANDOM_MAX ||
      k.secret_len == 0 || k.secret_len > GOTLS_SECRET_MAX) {
    return make_error("malformed key record (label {} random {} secret {} bytes)", k.label_len,
                      k.random_len, k.secret_len);
  }
  std::string label(k.label, k.label_len);
  for (char c : label) {
    if (!(std::isupper(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return make_error("unreadable key log label");
    }
  }
  return KeylogLine{label, to_hex({k.client_random, GOTLS_RANDOM_MAX}),
                    to_hex({k.secret, k.secret_len})};
}

std::vector<bpf::ProbeSpec> GoTlsModule::probes(const std::string& binary, const GoTlsTargets& t,
                                                CaptureMode mode) {
  using bpf::ProbeType;
  std::vector<bpf::ProbeSpec> specs;
  auto at = [&](uint64_t off, const char* prog, uint64_t cookie) {
    specs.push_back({binary, "", off, prog, ProbeType::kUprobe, false, cookie});
  };
  if (mode == CaptureMode::kText) {
    at(t.write_record, "probe_gotls_write", GOTLS_API_WRITE);
    at(t.read_entry, "probe_gotls_read_enter", GOTLS_API_READ);
    for (uint64_t r : t.read_rets) at(r, "probe_gotls_read_ret", GOTLS_API_READ);
  } else {
    at(t.write_key_log, "probe_gotls_keylog", 0);
    for (uint64_t h : t.handshakes) at(h, "probe_gotls_handshake", GOTLS_HOOK_HANDSHAKE);
  }
  return specs;
}

Result<void> GoTlsModule::init_one(const GoTlsConfig& cfg) {
  // Without -e, the executable of --pid (through /proc/<pid>/root for a container).
  std::string path = cfg.elfpath;
  if (path.empty()) {
    path = elf::process_executable(static_cast<int>(cfg.global.pid));
    if (path.empty()) {
      return make_error("--pid {}: no such process (or its executable is gone); give the Go "
                        "program with -e/--elfpath", cfg.global.pid);
    }
  }
  auto targets = find_targets(path, mode_);
  if (!targets) return make_error("-e/--elfpath: {}", targets.error().to_string());
  if (!targets->register_abi) {
    return make_error(
        "{} was built with {}, which passes arguments on the stack: capturing such "
        "old Go programs is not available yet (Go 1.17+ on amd64, 1.18+ on arm64)",
        path, targets->version.text);
  }
  programs_.push_back({path, std::move(targets).value(), {}});
  return {};
}

Result<void> GoTlsModule::init_host_wide() {
  GoScan scan = scan_running_programs(mode_);
  for (const auto& [path, why] : scan.unusable)
    log().warn("go program {} not hooked: {}", path, why);
  unusable_ = std::move(scan.unusable);
  if (scan.programs.empty()) {
    return make_error(
        "no running Go program uses crypto/tls ({} executables looked at{}): start "
        "the program before ecapture, or give it with -e/--elfpath",
        scan.executables, unusable_.empty() ? "" : "; see the warnings above");
  }
  programs_ = std::move(scan.programs);
  return {};
}

Result<void> GoTlsModule::on_init() {
  const auto& cfg = config_as<GoTlsConfig>();
  ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  if (!cfg.elfpath.empty() || cfg.global.pid != 0) {
    RETURN_IF_ERROR(init_one(cfg));
  } else {
    RETURN_IF_ERROR(init_host_wide());
  }
  return open_keys(cfg, mode_);
}

Result<void> GoTlsModule::on_start() {
  std::vector<bpf::ProbeSpec> specs;
  for (const GoProgram& p : programs_) {
    const GoTlsTargets& t = p.hooks;
    log().info("go program: {} ({}, {}, functions from {}{})", p.path,
               t.version.text.empty() ? "Go version unknown" : t.version.text,
               t.register_abi ? "register ABI" : "stack ABI", t.stripped ? ".gopclntab" : ".symtab",
               p.pids.empty() ? ""
                              : fmt::format(", {} process{} running", p.pids.size(),
                                            p.pids.size() == 1 ? "" : "es"));
    auto more = probes(p.path, t, mode_);
    specs.insert(specs.end(), more.begin(), more.end());
  }
  // pcap mode learns every connection's owner, so its probes see all processes of the binary.
  const bool all_processes = mode_ == CaptureMode::kPcap;
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes) settings.pid = settings.uid = 0;
  RETURN_IF_ERROR(session().load<gotls_bpf>(settings, gotls_bpf__open_opts, gotls_bpf__load,
                                            gotls_bpf__destroy, [&](gotls_bpf* sk) -> Result<void> {
                                              // Only register-ABI programs are hooked.
                                              sk->rodata->stack_abi = false;
                                              return {};
                                            }));
  const bool multi = session().loaded().uprobe_multi;
  RETURN_IF_ERROR(session().attach(specs, all_processes ? -1 : attach_pid(), kHint));
  for (const GoProgram& p : programs_) {
    if (mode_ == CaptureMode::kText) {
      log().info("hooks: writeRecordLocked entry, (*Conn).Read entry and its {} RETs ({}){}",
                 p.hooks.read_rets.size(), multi ? "uprobe_multi links" : "perf-event uprobes",
                 programs_.size() > 1 ? " in " + p.path : "");
    } else {
      log().info("hooks: (*Config).writeKeyLog entry, {} handshake entries; key log {}{}",
                 p.hooks.handshakes.size(), keys()->keylog_path(),
                 programs_.size() > 1 ? " in " + p.path : "");
    }
  }
  return {};
}

Result<void> GoTlsModule::on_run() {
  const auto& cfg = config_as<GoTlsConfig>();
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  const std::string what = programs_.size() == 1 ? programs_.front().path
                                                 : fmt::format("{} Go programs", programs_.size());
  log_started(fmt::format("{}, {} buffer{}{}", what, session().loaded().ringbuf ? "ring" : "perf",
                          cfg.global.pid ? fmt::format(", pid {}", cfg.global.pid) : "",
                          cfg.global.uid ? fmt::format(", uid {}", cfg.global.uid) : ""));
  return {};
}

nlohmann::json GoTlsModule::target_report() const {
  nlohmann::json out = nlohmann::json::array();
  for (const GoProgram& p : programs_) {
    nlohmann::json e = {{"path", p.path},
                        {"library", "go crypto/tls"},
                        {"version", p.hooks.version.text},
                        {"functions_from", p.hooks.stripped ? ".gopclntab" : ".symtab"}};
    if (!p.pids.empty()) e["processes"] = p.pids.size();
    out.push_back(std::move(e));
  }
  for (const auto& [path, why] : unusable_) out.push_back({{"path", path}, {"reason", why}});
  return out;
}

Result<bool> GoTlsModule::handle_own_record(std::span<const uint8_t> record) {
  if (record.empty() || record[0] != TLS_RECORD_KEYS) return false;
  ASSIGN_OR_RETURN(auto k, bpf::read_struct<gotls_keys_event>(record, "gotls key"));
  ASSIGN_OR_RETURN(KeylogLine line, keylog_line(k));
  add_keys(std::span(&line, 1), line.label, k.pid, k.uid, k.comm, k.tuple);
  return true;
}

ModuleInfo module_entry() {
  return make_entry<GoTlsConfig>(
      "gotls", {"tlsgo"},
      "capture TLS plaintext and keys of Go programs (crypto/tls), stripped or not", {"/gotls"},
      "gotls", [] { return ModulePtr(new GoTlsModule()); });
}

}  // namespace ecapture::gotls
