// OpenSSL module: library discovery, probe specs, BPF load/attach and event delivery.
#include "modules/openssl/openssl_module.h"

#include <fmt/ranges.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <tuple>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "elf/elf_file.h"
#include "elf/lib_discovery.h"
#include "modules/openssl/code_offsets.h"
#include "modules/openssl/openssl_keys.h"
#include "tls/targets.h"

namespace ecapture::openssl {
namespace {
constexpr const char* kHint = "is this OpenSSL or BoringSSL? pass the right file with --libssl";
}

Result<std::string> OpenSslModule::locate_library(const OpenSslConfig& cfg) {
  if (!cfg.libssl.empty()) return cfg.libssl;
  if (cfg.global.pid != 0) {
    // What the process itself runs, through /proc/<pid>/root when it lives in another mount
    // namespace (a container): its libssl, or its executable when OpenSSL is linked in (node).
    const int pid = static_cast<int>(cfg.global.pid);
    auto mapped = elf::mapped_libraries("libssl.so", pid);
    if (mapped.size() > 1) {
      return make_error("pid {} maps several libssl files ({}): choose one with --libssl", pid,
                        fmt::format("{}", fmt::join(mapped, ", ")));
    }
    if (mapped.size() == 1) return mapped.front();
    const std::string exe = elf::process_executable(pid);
    if (!exe.empty()) {
      auto f = elf::ElfFile::open(exe);
      if (f && (*f)->find_function("SSL_write") && (*f)->find_function("SSL_read")) return exe;
    }
    // Not loaded yet (e.g. a shell about to exec the client): the system's library.
  }
  auto found = elf::find_library({"libssl.so.3", "libssl.so.1.1", "libssl.so"});
  if (!found) {
    return make_error("{} (or pass the library or a static executable with --libssl)",
                      found.error().message);
  }
  return found;
}

std::vector<bpf::ProbeSpec> OpenSslModule::key_probes(const std::string& binary, int slot) {
  using bpf::ProbeType;
  const uint64_t s = static_cast<uint64_t>(slot) << 8;
  // SSL_do_handshake's return gives the keys of explicit handshakes (SSL_connect and SSL_accept
  // run through it); the entries of SSL_read/SSL_write catch implicit ones. One trap per call.
  std::vector<bpf::ProbeSpec> specs = {
      {binary, "SSL_do_handshake", 0, "probe_openssl_rw_enter", ProbeType::kUprobe, false,
       TLS_API_HANDSHAKE | s},
      {binary, "SSL_do_handshake", 0, "probe_openssl_rw_exit", ProbeType::kUretprobe, false,
       TLS_API_HANDSHAKE | s},
  };
  for (auto [name, api, optional] : {std::tuple{"SSL_write", TLS_API_WRITE, false},
                                     {"SSL_read", TLS_API_READ, false},
                                     {"SSL_write_ex", TLS_API_WRITE_EX, true},
                                     {"SSL_read_ex", TLS_API_READ_EX, true}}) {
    specs.push_back({binary, name, 0, "probe_openssl_rw_enter", ProbeType::kUprobe, optional,
                     static_cast<uint64_t>(api) | s});
  }
  return specs;
}

std::vector<bpf::ProbeSpec> OpenSslModule::boringssl_key_probes(const std::string& ssl,
                                                                const std::string& crypto,
                                                                int slot) {
  using bpf::ProbeType;
  const uint64_t s = static_cast<uint64_t>(slot) << 8;
  // SSL_do_handshake marks the thread as inside a handshake of that SSL* (SSL_read/SSL_write run
  // implicit handshakes through it too); the secrets come from libcrypto's derivations.
  return {
      {ssl, "SSL_do_handshake", 0, "probe_openssl_rw_enter", ProbeType::kUprobe, false,
       TLS_API_HANDSHAKE | s},
      {ssl, "SSL_do_handshake", 0, "probe_openssl_rw_exit", ProbeType::kUretprobe, false,
       TLS_API_HANDSHAKE | s},
      {crypto, "HKDF_expand", 0, "probe_bssl_hkdf_enter", ProbeType::kUprobe, false, s},
      {crypto, "HKDF_expand", 0, "probe_bssl_hkdf_exit", ProbeType::kUretprobe, false, s},
      {crypto, "CRYPTO_tls1_prf", 0, "probe_bssl_tls1_prf", ProbeType::kUprobe, false, s},
  };
}

std::vector<bpf::ProbeSpec> OpenSslModule::data_probes(const std::string& binary, int slot) {
  using bpf::ProbeType;
  const uint64_t s = static_cast<uint64_t>(slot) << 8;
  std::vector<bpf::ProbeSpec> specs;
  struct Fn {
    const char* name;
    tls_api api;
    bool optional;  // BoringSSL and OpenSSL < 1.1.1 have no _ex functions
  };
  for (Fn fn :
       {Fn{"SSL_write", TLS_API_WRITE, false}, Fn{"SSL_read", TLS_API_READ, false},
        Fn{"SSL_write_ex", TLS_API_WRITE_EX, true}, Fn{"SSL_read_ex", TLS_API_READ_EX, true}}) {
    const uint64_t cookie = static_cast<uint64_t>(fn.api) | s;
    // Writes on connections whose fd is known are emitted at their entry with no return probe
    // (one trap per SSL_write) where the kernel has session uprobes.
    if ((fn.api == TLS_API_WRITE || fn.api == TLS_API_WRITE_EX) &&
        bpf::uprobe_session_supported()) {
      specs.push_back({binary, fn.name, 0, "probe_openssl_write_session", ProbeType::kUprobeSession,
                       fn.optional, cookie});
      continue;
    }
    specs.push_back(
        {binary, fn.name, 0, "probe_openssl_rw_enter", ProbeType::kUprobe, fn.optional, cookie});
    specs.push_back(
        {binary, fn.name, 0, "probe_openssl_rw_exit", ProbeType::kUretprobe, fn.optional, cookie});
  }
  return specs;
}

Result<void> OpenSslModule::on_init() {
  const auto& cfg = config_as<OpenSslConfig>();
  ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  // Without a path or a process the module hooks every OpenSSL/BoringSSL in use, now and later.
  host_wide_ = cfg.libssl.empty() && cfg.global.pid == 0;
  if (host_wide_) {
    // --ssl_version forces one layout on every library found: refused here if unknown.
    if (!cfg.ssl_version.empty() && mode_ != CaptureMode::kText) {
      ASSIGN_OR_RETURN(auto version_text, parse_ssl_version_flag(cfg.ssl_version));
      RETURN_IF_ERROR(layout_for_version(version_text));
    }
    return open_keys(cfg, mode_);
  }
  ASSIGN_OR_RETURN(const std::string path, locate_library(cfg));
  auto opened = elf::ElfFile::open(path);
  if (!opened) {
    if (cfg.libssl.empty()) return std::move(opened).error();
    return make_error("--libssl: {}", opened.error().to_string());
  }
  auto elf = std::move(opened).value();
  if (!elf->is_native_arch()) {
    return make_error(
        "{} is built for another CPU architecture (e_machine {}); give a library "
        "for this machine with --libssl",
        path, elf->machine());
  }
  if (!elf->find_function("SSL_write") || !elf->find_function("SSL_read")) {
    return make_error("{} does not export SSL_write/SSL_read ({})", path, kHint);
  }
  ASSIGN_OR_RETURN(lib_, plan_library(*elf));
  if (mode_ == CaptureMode::kText) return {};
  return open_keys(cfg, mode_);
}

Result<LibraryPlan> OpenSslModule::plan_library(const elf::ElfFile& elf) const {
  const auto& cfg = config_as<OpenSslConfig>();
  LibraryPlan plan;
  plan.path = elf.path();
  if (auto version = elf::detect_ssl_version(plan.path); version) {
    plan.version = std::move(version).value();
  } else {
    plan.version_error = version.error().to_string();
  }
  if (mode_ == CaptureMode::kText) return plan;

  // Keys need the library's struct layout: chosen from --ssl_version or the detected version,
  // never guessed.
  std::string version_text;
  if (!cfg.ssl_version.empty()) {
    ASSIGN_OR_RETURN(version_text, parse_ssl_version_flag(cfg.ssl_version));
  } else if (!plan.version) {
    return make_error(
        "cannot capture keys from {}: its OpenSSL version is unknown ({}); name it "
        "with --ssl_version \"openssl X.Y.Z\"",
        plan.path, plan.version_error);
  } else if (plan.version->flavor == elf::SslFlavor::kBoringSsl) {
    version_text = kBoringSsl;
  } else {
    version_text = plan.version->version;
  }
  ASSIGN_OR_RETURN(plan.layout, layout_for_version(version_text));
  if (plan.layout.layout.boringssl) {
    if (!elf.find_function("SSL_do_handshake")) {
      return make_error("{} does not export SSL_do_handshake ({})", plan.path, kHint);
    }
    ASSIGN_OR_RETURN(plan.crypto_path, find_boringssl_crypto(elf));
  }
  RETURN_IF_ERROR(check_layout(elf, !cfg.ssl_version.empty(), plan));
  return plan;
}

Result<void> OpenSslModule::check_layout(const elf::ElfFile& elf, bool forced, LibraryPlan& plan) {
  auto check = check_openssl_layout(elf, plan.layout.layout);
  if (check.mismatches.empty()) {
    plan.offsets_note =
        check.checked.empty()
            ? "not checked: the library's accessors could not be decoded"
            : fmt::format("checked against the library's code: {}", fmt::join(check.checked, ", "));
    return {};
  }
  const std::string what = fmt::format("{}", fmt::join(check.mismatches, "; "));
  if (plan.layout.layout.boringssl) {
    // Only the client random is read, and the accessor is authoritative about where it is.
    if (auto code = client_random_offsets(elf)) {
      plan.layout.layout.ssl_s3 = code->ssl_s3;
      plan.layout.layout.s3_client_random = code->s3_client_random;
    }
    plan.offsets_note = "taken from the library's code: " + what;
    return {};
  }
  if (!forced) {
    return make_error(
        "{}: the struct layout of '{}' does not match this build ({}); name a "
        "matching layout with --ssl_version",
        plan.path, plan.layout.name, what);
  }
  plan.offsets_note = "forced with --ssl_version although " + what;
  return {};
}

std::vector<bpf::ProbeSpec> OpenSslModule::probes(const LibraryPlan& plan, int slot) const {
  if (mode_ == CaptureMode::kText) return data_probes(plan.path, slot);
  if (plan.layout.layout.boringssl) return boringssl_key_probes(plan.path, plan.crypto_path, slot);
  return key_probes(plan.path, slot);
}

Result<void> OpenSslModule::set_layout(int slot, const openssl_layout& layout) {
  const uint32_t key = static_cast<uint32_t>(slot);
  if (bpf_map__update_elem(skel_->maps.layouts, &key, sizeof(key), &layout, sizeof(layout),
                           BPF_ANY) != 0) {
    return make_errno_error(errno, "cannot store the key layout of slot {}", slot);
  }
  return {};
}

tls::TargetPlan OpenSslModule::plan_target(const std::string& host_path, int slot) {
  using Kind = tls::TargetPlan::Kind;
  tls::TargetPlan out;
  auto opened = elf::ElfFile::open(host_path);
  if (!opened) return out;
  const auto& elf = **opened;
  if (!elf.is_native_arch() || !elf.may_export("SSL_write") || !elf.find_function("SSL_write") ||
      (!elf.find_function("SSL_read") && !elf.find_function("SSL_read_ex"))) {
    return out;  // not OpenSSL
  }
  auto plan = plan_library(elf);
  out.info["library"] = "OpenSSL";
  if (!plan) {
    out.kind = Kind::kUnhookable;
    out.reason = plan.error().to_string();
    return out;
  }
  if (plan->version) {
    out.info["library"] =
        plan->version->flavor == elf::SslFlavor::kBoringSsl ? "BoringSSL" : "OpenSSL";
    out.info["version"] = plan->version->display();
  } else {
    out.info["version_error"] = plan->version_error;
  }
  if (mode_ == CaptureMode::kText) {
    out.info["keys"] = "not captured (text mode)";
  } else {
    if (auto r = set_layout(slot, plan->layout.layout); !r) {
      out.kind = Kind::kUnhookable;
      out.reason = r.error().to_string();
      return out;
    }
    out.info["keys"] = fmt::format("layout '{}' ({})", plan->layout.name, plan->offsets_note);
    if (!plan->crypto_path.empty()) out.info["crypto"] = plan->crypto_path;
  }
  out.kind = Kind::kHook;
  out.specs = probes(*plan, slot);
  return out;
}

Result<void> OpenSslModule::on_start() {
  if (!host_wide_) {
    if (lib_.version) {
      log().info("library: {} ({}, version string found in {})", lib_.path, lib_.version->display(),
                 lib_.version->source_path);
    } else {
      // The data path does not depend on the library's layout, so text capture goes on.
      log().warn("library: {} (version unknown: {})", lib_.path, lib_.version_error);
    }
  }
  // pcap mode learns the owners of every TLS connection (to drop other processes' packets), so
  // its key probes see all processes; --pid/--uid are applied in user space there.
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes()) settings.every_process();
  // Host-wide: the watcher loads on another core meanwhile (the future's end waits for it).
  std::future<Result<std::shared_ptr<tls::TargetWatcher>>> watcher_loaded;
  if (host_wide_) {
    tls::WatcherSettings ws{0, settings.uid, btf().custom_path};  // pcap: every process
    watcher_loaded = tls::acquire_watcher_async(ws, log());
  }
  ASSIGN_OR_RETURN(skel_, session().load<openssl_bpf>(settings, openssl_bpf__open_opts,
                                                      openssl_bpf__load, openssl_bpf__destroy,
                                                      [&](openssl_bpf* sk) -> Result<void> {
                                                        if (mode_ == CaptureMode::kText) return {};
                                                        // Keylog: the keys' fd comes from the
                                                        // connection's last fd only.
                                                        if (mode_ == CaptureMode::kKeylog)
                                                          bpf::skip_fd_learners(sk->obj);
                                                        sk->rodata->capture_data = false;
                                                        sk->rodata->capture_keys = true;
                                                        return {};
                                                      }));
  const int pid = all_processes() ? -1 : attach_pid();
  if (host_wide_) {
    return start_targets(
        watcher_loaded,
        {.module = name(),
         .prefixes = {"libssl", "libcrypto", "libboringssl"},
         .plan = [this](const std::string& path, int slot) { return plan_target(path, slot); },
         .hint = kHint,
         .attach_pid = pid,
         .purge_maps = {"tls_conn_fds", "tls_write_marks", "keys_sent"}});
  }
  const bool multi = session().loaded().uprobe_multi;
  if (mode_ != CaptureMode::kText) {
    RETURN_IF_ERROR(set_layout(0, lib_.layout.layout));
    auto level =
        lib_.offsets_note.rfind("forced", 0) == 0 ? spdlog::level::warn : spdlog::level::info;
    log().log(level, "keys: {} layout '{}' ({}), key log {}", lib_.path, lib_.layout.name,
              lib_.offsets_note, keys()->keylog_path());
  }
  ASSIGN_OR_RETURN(auto attached, session().attach(probes(lib_, 0), pid, kHint));
  std::string hooks;
  for (const auto& a : attached.attached) hooks += (hooks.empty() ? "" : ", ") + a;
  const std::string& crypto = lib_.crypto_path;
  log().info(
      "hooks attached to {}{} ({}): {}", lib_.path,
      crypto.empty() || crypto == lib_.path || mode_ == CaptureMode::kText ? "" : " and " + crypto,
      multi ? "uprobe_multi links" : "perf-event uprobes", hooks);
  for (const auto& m : attached.missing) {
    log().info(
        "{} is not exported by {}: calls through it are not seen (normal for BoringSSL "
        "and OpenSSL < 1.1.1)",
        m, lib_.path);
  }
  return {};
}

nlohmann::json OpenSslModule::single_target_report() const {
  nlohmann::json out = nlohmann::json::array();
  if (lib_.path.empty()) return out;
  nlohmann::json t = {{"path", lib_.path},
                      {"host_path", lib_.path},
                      {"library", "OpenSSL"},
                      {"hooked", true},
                      {"container", ""}};
  if (lib_.version) {
    t["library"] = lib_.version->flavor == elf::SslFlavor::kBoringSsl ? "BoringSSL" : "OpenSSL";
    t["version"] = lib_.version->display();
  }
  t["keys"] = mode_ == CaptureMode::kText
                  ? std::string("not captured (text mode)")
                  : fmt::format("layout '{}' ({})", lib_.layout.name, lib_.offsets_note);
  out.push_back(std::move(t));
  return out;
}

Result<void> OpenSslModule::on_run() {
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  log_tls_started(host_wide_ ? host_wide_summary("target") : lib_.path);
  return {};
}

Result<void> OpenSslModule::handle_keys(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(auto k, bpf::read_struct<openssl_keys_event>(record, "tls keys"));
  auto lines = keylog_lines(k);
  if (!lines) {
    log().warn("tls: keys of pid {} not usable: {}", k.pid, lines.error().to_string());
    return {};
  }
  const bool tls12 = lines->front().label == "CLIENT_RANDOM";
  add_keys(*lines, tls12 ? "TLS 1.2 master secret" : "TLS 1.3 secrets", k.pid, k.uid, k.comm,
           k.tuple, k.cgroup_id);
  return {};
}

Result<void> OpenSslModule::handle_secret(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(auto e, bpf::read_struct<openssl_secret_event>(record, "tls secret"));
  auto line = secret_keylog_line(e);
  if (!line) return {};  // a derivation that is not logged
  // One log line and one event per session: TLS 1.2's only line, TLS 1.3's last traffic secret.
  const bool last = line->label == "CLIENT_RANDOM" || line->label == "SERVER_TRAFFIC_SECRET_0";
  add_keys(std::span(&*line, 1),
           !last                            ? ""
           : line->label == "CLIENT_RANDOM" ? "TLS 1.2 master secret"
                                            : "TLS 1.3 secrets",
           e.pid, e.uid, e.comm, e.tuple, e.cgroup_id);
  return {};
}

Result<bool> OpenSslModule::handle_own_record(std::span<const uint8_t> record) {
  if (!record.empty() && record[0] == TLS_RECORD_KEYS) {
    RETURN_IF_ERROR(handle_keys(record));
    return true;
  }
  if (!record.empty() && record[0] == TLS_RECORD_SECRET) {
    RETURN_IF_ERROR(handle_secret(record));
    return true;
  }
  return false;
}

ModuleInfo module_entry() {
  return make_entry<OpenSslConfig>(
      "tls", {"openssl"},
      "capture TLS plaintext from OpenSSL/BoringSSL (libssl or a static executable)",
      {"/tls", "/openssl", "/boringssl"}, "openssl", [] { return ModulePtr(new OpenSslModule()); });
}

}  // namespace ecapture::openssl
