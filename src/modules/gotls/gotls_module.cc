// gotls module: Go binary analysis, probe specs, BPF load/attach and event delivery.
#include "modules/gotls/gotls_module.h"

#include <unistd.h>

#include <cstring>
#include <future>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "core/clock.h"
#include "elf/lib_discovery.h"
#include "elf/process_discovery.h"
#include "output/keylog_writer.h"

namespace ecapture::gotls {
namespace {

static_assert(sizeof(gotls_keys_event) == 232, "ABI: gotls_keys_event size");
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
      return make_error(
          "{}: its Go version is unknown (no build info) and its line table is older "
          "than Go 1.18: cannot tell how it passes arguments",
          path);
    }
    t.register_abi = true;
  } else {
    t.register_abi = bin->register_abi();
  }
  auto need = [&](const char* name) -> Result<elf::GoFunction> {
    auto f = bin->find_function(name);
    if (!f) {
      return make_error(
          "{} (Go {}) has no {}: it does not use crypto/tls, or the function was "
          "inlined away; {}",
          path, t.version.text.empty() ? "?" : t.version.text, name, kHint);
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

tls::TargetPlan plan_go_target(const std::string& host_path, CaptureMode mode) {
  using Kind = tls::TargetPlan::Kind;
  tls::TargetPlan plan;
  // The section headers first: most files are no Go program, and reading them is cheap.
  auto elf = elf::ElfFile::open(host_path);
  if (!elf || !(*elf)->is_native_arch() || !elf::has_go_sections(**elf)) return plan;
  auto bin = elf::GoBinary::open(host_path);
  if (!bin) return plan;
  // A Go program with neither function does not use crypto/tls: no target.
  if (!(*bin)->find_function(kConnRead) && !(*bin)->find_function(kWriteKeyLog)) return plan;
  auto hooks = find_targets(**bin, mode);
  plan.info = {{"library", "Go crypto/tls"}};
  if (hooks) {
    plan.info["version"] = hooks->version.text.empty() ? "unknown" : hooks->version.text;
    plan.info["functions_from"] = hooks->stripped ? ".gopclntab" : ".symtab";
    if (!hooks->register_abi) {
      hooks = make_error(
          "built with {}, which passes arguments on the stack: not supported yet "
          "(Go 1.17+ on amd64, 1.18+ on arm64)",
          hooks->version.text);
    }
  }
  if (!hooks) {
    plan.kind = Kind::kUnhookable;
    plan.reason = hooks.error().to_string();
    return plan;
  }
  plan.kind = Kind::kHook;
  plan.specs = GoTlsModule::probes(host_path, *hooks, mode);
  return plan;
}

std::vector<tls::Target> executable_targets() {
  std::vector<tls::Target> out;
  for (elf::ExeFile& exe : elf::running_executables()) {
    if (exe.pids == std::vector<int>{::getpid()}) continue;
    tls::Target t{{exe.dev, exe.ino}, exe.seen_path, exe.path, {exe.pids.begin(), exe.pids.end()}};
    t.pids.erase(::getpid());
    out.push_back(std::move(t));
  }
  return out;
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
  elf_path_ = cfg.elfpath;
  if (elf_path_.empty()) {
    elf_path_ = elf::process_executable(static_cast<int>(cfg.global.pid));
    if (elf_path_.empty()) {
      return make_error(
          "--pid {}: no such process (or its executable is gone); give the Go "
          "program with -e/--elfpath",
          cfg.global.pid);
    }
  }
  auto targets = find_targets(elf_path_, mode_);
  if (!targets) return make_error("-e/--elfpath: {}", targets.error().to_string());
  hooks_ = std::move(targets).value();
  if (!hooks_.register_abi) {
    return make_error(
        "{} was built with {}, which passes arguments on the stack: capturing such "
        "old Go programs is not available yet (Go 1.17+ on amd64, 1.18+ on arm64)",
        elf_path_, hooks_.version.text);
  }
  return {};
}

Result<void> GoTlsModule::on_init() {
  const auto& cfg = config_as<GoTlsConfig>();
  ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  // Without a program or a process: every Go program using crypto/tls, now and later.
  if (!cfg.elfpath.empty() || cfg.global.pid != 0) RETURN_IF_ERROR(init_one(cfg));
  return open_keys(cfg, mode_);
}

Result<void> GoTlsModule::start_host_wide(std::shared_ptr<tls::TargetWatcher> watcher, int pid) {
  bpf::CaptureSession& sess = session();  // bound here: the watcher's thread only uses it
  const CaptureMode mode = mode_;
  set_targets(std::make_unique<tls::TargetSet>(
      sess, log(), name(),
      [mode](const std::string& path, int) { return plan_go_target(path, mode); }, kHint, pid));
  // Subscribed before the scan: what starts meanwhile is reported (and waits) too.
  return targets()->start(std::move(watcher), executable_targets, [&sess](int p) {
    sess.purge_process({"reads", "handshakes"}, static_cast<uint32_t>(p));
  });
}

Result<void> GoTlsModule::on_start() {
  const bool host_wide = elf_path_.empty();
  if (!host_wide) {
    log().info("go program: {} ({}, {}, functions from {})", elf_path_,
               hooks_.version.text.empty() ? "Go version unknown" : hooks_.version.text,
               hooks_.register_abi ? "register ABI" : "stack ABI",
               hooks_.stripped ? ".gopclntab" : ".symtab");
  }
  // pcap mode learns every connection's owner, so its probes see all processes of the binary.
  const bool all_processes = mode_ == CaptureMode::kPcap;
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes) settings.every_process();
  // Host-wide: the watcher loads on another core while the module's object does.
  std::future<Result<std::shared_ptr<tls::TargetWatcher>>> watcher;
  if (host_wide) watcher = tls::acquire_watcher_async({0, settings.uid, btf().custom_path}, log());
  RETURN_IF_ERROR(session().load<gotls_bpf>(settings, gotls_bpf__open_opts, gotls_bpf__load,
                                            gotls_bpf__destroy, [&](gotls_bpf* sk) -> Result<void> {
                                              // Only register-ABI programs are hooked.
                                              sk->rodata->stack_abi = false;
                                              return {};
                                            }));
  const int pid = all_processes ? -1 : attach_pid();
  if (host_wide) {
    // The tracepoints now, the uprobes per program as processes use them.
    RETURN_IF_ERROR(session().attach({}, pid, kHint));
    ASSIGN_OR_RETURN(auto w, watcher.get());
    return start_host_wide(std::move(w), pid);
  }
  const bool multi = session().loaded().uprobe_multi;
  RETURN_IF_ERROR(session().attach(probes(elf_path_, hooks_, mode_), pid, kHint));
  if (mode_ == CaptureMode::kText) {
    log().info("hooks: writeRecordLocked entry, (*Conn).Read entry and its {} RETs ({})",
               hooks_.read_rets.size(), multi ? "uprobe_multi links" : "perf-event uprobes");
  } else {
    log().info("hooks: (*Config).writeKeyLog entry, {} handshake entries; key log {}",
               hooks_.handshakes.size(), keys()->keylog_path());
  }
  return {};
}

Result<void> GoTlsModule::on_run() {
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  log_tls_started(targets() ? host_wide_summary("Go program") : elf_path_);
  return {};
}

nlohmann::json GoTlsModule::single_target_report() const {
  nlohmann::json out = nlohmann::json::array();
  if (elf_path_.empty()) return out;
  out.push_back({{"path", elf_path_},
                 {"host_path", elf_path_},
                 {"library", "Go crypto/tls"},
                 {"version", hooks_.version.text},
                 {"functions_from", hooks_.stripped ? ".gopclntab" : ".symtab"},
                 {"hooked", true},
                 {"container", ""}});
  return out;
}

Result<bool> GoTlsModule::handle_own_record(std::span<const uint8_t> record) {
  if (record.empty() || record[0] != TLS_RECORD_KEYS) return false;
  ASSIGN_OR_RETURN(auto k, bpf::read_struct<gotls_keys_event>(record, "gotls key"));
  ASSIGN_OR_RETURN(KeylogLine line, keylog_line(k));
  add_keys(std::span(&line, 1), line.label, k.pid, k.uid, k.comm, k.tuple, k.cgroup_id);
  return true;
}

ModuleInfo module_entry() {
  return make_entry<GoTlsConfig>(
      "gotls", {"tlsgo"},
      "capture TLS plaintext and keys of Go programs (crypto/tls), stripped or not", {"/gotls"},
      "gotls", [] { return ModulePtr(new GoTlsModule()); });
}

}  // namespace ecapture::gotls
