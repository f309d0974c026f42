// gnutls/nss modules: library discovery and checks, probe specs, BPF load/attach, delivery.
#include "modules/tlslib/tlslib_module.h"

#include <unistd.h>

#include <cstring>

#include <fmt/ranges.h>
#include <ctime>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "core/clock.h"
#include "elf/elf_file.h"
#include "elf/lib_discovery.h"

namespace ecapture::tlslib {


namespace {

struct HookedFn {
  const char* name;
  tls_api api;  // TLS_API_READ or TLS_API_WRITE: the direction, as attach cookie
};

// gnutls_record_send calls gnutls_record_send2: hooking only the former gives one event per call.
constexpr HookedFn kGnutlsFns[] = {{"gnutls_record_send", TLS_API_WRITE},
                                   {"gnutls_record_recv", TLS_API_READ}};
constexpr HookedFn kNsprFns[] = {{"PR_Write", TLS_API_WRITE},
                                 {"PR_Send", TLS_API_WRITE},
                                 {"PR_Read", TLS_API_READ},
                                 {"PR_Recv", TLS_API_READ}};

std::span<const HookedFn> hooked(LibKind kind) {
  if (kind == LibKind::kGnutls) return kGnutlsFns;
  return kNsprFns;
}

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<std::string> TlsLibModule::locate_library(LibKind kind, const std::string& flag_path,
                                                 uint64_t pid) {
  if (!flag_path.empty()) return flag_path;
  const bool gnutls = kind == LibKind::kGnutls;
  if (pid != 0) {
    // The library the process itself maps, through /proc/<pid>/root for another mount
    // namespace (a container); the system's when it maps none yet.
    auto mapped =
        elf::mapped_libraries(gnutls ? "libgnutls.so" : "libnspr4.so", static_cast<int>(pid));
    if (mapped.size() > 1) {
      return make_error("pid {} maps several {} files ({}): choose one with {}", pid,
                        gnutls ? "libgnutls" : "libnspr4",
                        fmt::format("{}", fmt::join(mapped, ", ")), gnutls ? "--gnutls" : "--nspr");
    }
    if (mapped.size() == 1) return mapped.front();
  }
  auto found =
      elf::find_library(gnutls ? std::vector<std::string>{"libgnutls.so.30", "libgnutls.so"}
                               : std::vector<std::string>{"libnspr4.so"});
  if (!found) {
    return make_error("{} (or pass the library with {})", found.error().message,
                      gnutls ? "--gnutls" : "--nspr");
  }
  return found;
}

Result<void> TlsLibModule::check_library(LibKind kind, const std::string& path, bool from_flag) {
  const char* flag = kind == LibKind::kGnutls ? "--gnutls" : "--nspr";
  auto opened = elf::ElfFile::open(path);
  if (!opened) {
    if (!from_flag) return std::move(opened).error();
    return make_error("{}: {}", flag, opened.error().to_string());
  }
  auto elf = std::move(opened).value();
  if (!elf->is_native_arch()) {
    return make_error(
        "{} is built for another CPU architecture (e_machine {}); give a library "
        "for this machine with {}",
        path, elf->machine(), flag);
  }
  for (const auto& fn : hooked(kind)) {
    if (elf->find_function(fn.name)) continue;
    if (kind == LibKind::kGnutls) {
      return make_error(
          "{} does not export {} (is this GnuTLS? pass libgnutls.so.30 with "
          "--gnutls)",
          path, fn.name);
    }
    std::string hint = "pass libnspr4.so with --nspr";
    if (basename_of(path).starts_with("libnss3.so") ||
        basename_of(path).starts_with("libssl3.so")) {
      hint =
          "NSS's TLS data goes through NSPR: pass libnspr4.so (from the same directory) with "
          "--nspr";
    }
    return make_error("{} does not export {} (is this NSPR? {})", path, fn.name, hint);
  }
  return {};
}

std::vector<bpf::ProbeSpec> TlsLibModule::data_probes(LibKind kind, const std::string& binary) {
  const bool gnutls = kind == LibKind::kGnutls;
  std::vector<bpf::ProbeSpec> specs;
  for (const auto& fn : hooked(kind)) {
    specs.push_back({binary, fn.name, 0, gnutls ? "probe_gnutls_enter" : "probe_nspr_enter",
                     bpf::ProbeType::kUprobe, false, static_cast<uint64_t>(fn.api)});
    specs.push_back({binary, fn.name, 0, gnutls ? "probe_gnutls_exit" : "probe_nspr_exit",
                     bpf::ProbeType::kUretprobe, false, static_cast<uint64_t>(fn.api)});
  }
  return specs;
}

std::vector<bpf::ProbeSpec> TlsLibModule::key_probes(const std::string& binary) {
  return {{binary, "gnutls_handshake", 0, "probe_gnutls_hs_enter", bpf::ProbeType::kUprobe, false,
           TLS_API_HANDSHAKE},
          {binary, "gnutls_handshake", 0, "probe_gnutls_hs_exit", bpf::ProbeType::kUretprobe, false,
           TLS_API_HANDSHAKE}};
}

Result<void> TlsLibModule::init_keys(const GnutlsConfig& cfg) {
  // The session layout comes from --ssl_version or the library's own version string, never a
  // guess.
  std::string version = cfg.ssl_version;
  if (version.empty()) {
    ASSIGN_OR_RETURN(auto found, sniff_gnutls_version(lib_path_));
    if (!found) {
      return make_error(
          "cannot capture keys from {}: no GnuTLS version string found in it; name "
          "the version with --ssl_version (e.g. 3.7.9)",
          lib_path_);
    }
    version = *found;
  }
  auto layout = gnutls_layout_for_version(version);
  if (!layout) {
    if (!cfg.ssl_version.empty()) return make_error("--ssl_version: {}", layout.error().message);
    return make_error("{} (version read from {})", layout.error().message, lib_path_);
  }
  layout_ = std::move(layout).value();
  return open_keys(cfg, mode_);
}

Result<void> TlsLibModule::on_init() {
  std::string flag_path;
  if (kind_ == LibKind::kGnutls) {
    const auto& cfg = config_as<GnutlsConfig>();
    flag_path = cfg.gnutls;
    ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  } else {
    flag_path = config_as<NssConfig>().nspr;
  }
  ASSIGN_OR_RETURN(lib_path_, locate_library(kind_, flag_path, global().pid));
  RETURN_IF_ERROR(check_library(kind_, lib_path_, !flag_path.empty()));
  if (mode_ != tls::CaptureMode::kText) RETURN_IF_ERROR(init_keys(config_as<GnutlsConfig>()));
  return {};
}

Result<void> TlsLibModule::on_start() {
  log().info("library: {}", lib_path_);
  // pcap mode learns the owners of every TLS connection (to drop other processes' packets), so
  // its key probes see all processes; --pid/--uid are applied in user space there.
  const bool all_processes = mode_ == tls::CaptureMode::kPcap;
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes) settings.every_process();
  RETURN_IF_ERROR(session().load<tlslib_bpf>(
                       settings, tlslib_bpf__open_opts, tlslib_bpf__load,
                       tlslib_bpf__destroy, [&](tlslib_bpf* sk) -> Result<void> {
                         // Keylog: the keys' fd comes from the connection's last fd only.
                         if (mode_ == tls::CaptureMode::kKeylog) bpf::skip_fd_learners(sk->obj);
                         if (mode_ != tls::CaptureMode::kText) {
                           std::memcpy(const_cast<gnutls_layout*>(&sk->rodata->glayout),
                                       &layout_.layout, sizeof(gnutls_layout));
                         }
                         return {};
                       }));
  const bool multi = session().loaded().uprobe_multi;
  if (mode_ != tls::CaptureMode::kText) {
    log().info("keys: {} layout '{}', key log {}", lib_path_, layout_.name,
               keys()->keylog_path());
  }
  std::string hint = fmt::format("is this the right library? pass it with {}", flag());
  ASSIGN_OR_RETURN(auto attached,
                   session().attach(mode_ == tls::CaptureMode::kText ? data_probes(kind_, lib_path_)
                                                                    : key_probes(lib_path_),
                                    all_processes ? -1 : attach_pid(), hint));
  std::string hooks;
  for (const auto& a : attached.attached) hooks += (hooks.empty() ? "" : ", ") + a;
  log().info("hooks attached to {} ({}): {}", lib_path_,
             multi ? "uprobe_multi links" : "perf-event uprobes", hooks);
  return {};
}

Result<void> TlsLibModule::on_run() {
  const auto& g = global();
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  log_started(fmt::format("{}, {} buffer{}{}", lib_path_,
                          session().loaded().ringbuf ? "ring" : "perf",
                          g.pid ? fmt::format(", pid {}", g.pid) : "",
                          g.uid ? fmt::format(", uid {}", g.uid) : ""));
  return {};
}

Result<bool> TlsLibModule::handle_own_record(std::span<const uint8_t> record) {
  if (record.empty() || record[0] != GNUTLS_RECORD_KEYS) return false;
  ASSIGN_OR_RETURN(auto k, bpf::read_struct<gnutls_keys_event>(record, "gnutls keys"));
  auto lines = gnutls_keylog_lines(k);
  if (!lines) {
    log().warn("gnutls: keys of pid {} not usable: {}", k.pid, lines.error().to_string());
    return true;
  }
  add_keys(*lines, lines->size() == 1 ? "TLS 1.2 master secret" : "TLS 1.3 secrets", k.pid, k.uid,
           k.comm, k.tuple, k.cgroup_id);
  return true;
}

ModuleInfo gnutls_entry() {
  return make_entry<GnutlsConfig>("gnutls", {"gnu"}, "capture TLS plaintext from GnuTLS programs",
                                  {"/gnutls"}, "gnutls",
                                  [] { return ModulePtr(new TlsLibModule(LibKind::kGnutls)); });
}

ModuleInfo nss_entry() {
  return make_entry<NssConfig>(
      "nss", {"nspr"}, "capture TLS plaintext from NSS/NSPR programs (Firefox, tstclnt, ...)",
      {"/nss", "/nspr"}, "nspr", [] { return ModulePtr(new TlsLibModule(LibKind::kNss)); });
}

}  // namespace ecapture::tlslib
