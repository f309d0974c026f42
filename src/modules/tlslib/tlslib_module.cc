// gnutls/nss modules: library discovery and checks, probe specs, BPF load/attach, delivery.
#include "modules/tlslib/tlslib_module.h"

#include <fmt/ranges.h>

#include <cstring>
#include <future>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "elf/elf_file.h"
#include "elf/lib_discovery.h"
#include "modules/tlslib/nss_version.h"

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

std::vector<bpf::ProbeSpec> TlsLibModule::key_probes(const std::string& binary, int slot) {
  const uint64_t cookie = TLS_API_HANDSHAKE | (static_cast<uint64_t>(slot) << 8);
  return {{binary, "gnutls_handshake", 0, "probe_gnutls_hs_enter", bpf::ProbeType::kUprobe, false,
           cookie},
          {binary, "gnutls_handshake", 0, "probe_gnutls_hs_exit", bpf::ProbeType::kUretprobe, false,
           cookie}};
}

std::vector<bpf::ProbeSpec> TlsLibModule::probes(const std::string& path, int slot) const {
  return keys_mode() ? key_probes(path, slot) : data_probes(kind_, path);
}

nlohmann::json TlsLibModule::library_info(LibKind kind, const std::string& path) {
  nlohmann::json info = nlohmann::json::object();
  if (kind == LibKind::kGnutls) {
    info["library"] = "GnuTLS";
    auto version = sniff_gnutls_version(path);
    if (version && *version) {
      info["version"] = "GnuTLS " + **version;
    } else {
      info["version_error"] =
          version ? "no GnuTLS version string found" : version.error().to_string();
    }
    return info;
  }
  info["library"] = "NSS/NSPR";
  auto nspr = sniff_nspr_version(path);
  if (!nspr) {
    info["version_error"] = "no NSPR version string found";
    return info;
  }
  std::string version = "NSPR " + *nspr;
  // NSS (libnss3.so, libssl3.so) sends its TLS records through this NSPR; it sits beside it.
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    if (auto nss = sniff_nss_version(path.substr(0, slash + 1) + "libnss3.so")) {
      info["nss"] = "NSS " + *nss;
      version += ", NSS " + *nss;
    }
  }
  info["version"] = version;
  return info;
}

Result<GnutlsNamedLayout> TlsLibModule::layout_of(const std::string& path) const {
  // The session layout comes from --ssl_version or the library's own version string, never a
  // guess.
  const auto& cfg = config_as<GnutlsConfig>();
  std::string version = cfg.ssl_version;
  if (version.empty()) {
    ASSIGN_OR_RETURN(auto found, sniff_gnutls_version(path));
    if (!found) {
      return make_error(
          "cannot capture keys from {}: no GnuTLS version string found in it; name "
          "the version with --ssl_version (e.g. 3.7.9)",
          path);
    }
    version = *found;
  }
  auto layout = gnutls_layout_for_version(version);
  if (!layout) {
    if (!cfg.ssl_version.empty()) return make_error("--ssl_version: {}", layout.error().message);
    return make_error("{} (version read from {})", layout.error().message, path);
  }
  return layout;
}

Result<void> TlsLibModule::set_layout(int slot, const gnutls_layout& layout) {
  const uint32_t key = static_cast<uint32_t>(slot);
  if (bpf_map__update_elem(skel_->maps.gnutls_layouts, &key, sizeof(key), &layout, sizeof(layout),
                           BPF_ANY) != 0) {
    return make_errno_error(errno, "cannot store the GnuTLS key layout of slot {}", slot);
  }
  return {};
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
  // Without a path or a process the module hooks every library of its kind in use, now and
  // later.
  host_wide_ = flag_path.empty() && global().pid == 0;
  if (host_wide_) {
    if (kind_ != LibKind::kGnutls || !keys_mode()) return {};
    const auto& cfg = config_as<GnutlsConfig>();
    // --ssl_version forces one layout on every library found: refused here if unknown.
    if (!cfg.ssl_version.empty()) {
      if (auto layout = gnutls_layout_for_version(cfg.ssl_version); !layout) {
        return make_error("--ssl_version: {}", layout.error().message);
      }
    }
    return open_keys(cfg, mode_);
  }
  ASSIGN_OR_RETURN(lib_path_, locate_library(kind_, flag_path, global().pid));
  RETURN_IF_ERROR(check_library(kind_, lib_path_, !flag_path.empty()));
  if (!keys_mode()) return {};
  ASSIGN_OR_RETURN(layout_, layout_of(lib_path_));
  return open_keys(config_as<GnutlsConfig>(), mode_);
}

tls::TargetPlan TlsLibModule::plan_target(const std::string& host_path, int slot) {
  using Kind = tls::TargetPlan::Kind;
  tls::TargetPlan out;
  auto opened = elf::ElfFile::open(host_path);
  if (!opened) return out;
  const auto& elf = **opened;
  if (!elf.is_native_arch()) return out;
  for (const auto& fn : hooked(kind_)) {
    if (!elf.find_function(fn.name)) return out;  // not a library of this kind
  }
  out.info = library_info(kind_, host_path);
  out.kind = Kind::kUnhookable;
  if (!keys_mode()) {
    out.info["keys"] = kind_ == LibKind::kGnutls
                           ? "not captured (text mode)"
                           : "not captured (the nss module captures plaintext only)";
  } else {
    if (!elf.find_function("gnutls_handshake")) {
      out.reason = "does not export gnutls_handshake, where the keys are read";
      return out;
    }
    auto layout = layout_of(host_path);
    if (!layout) {
      out.reason = layout.error().to_string();
      return out;
    }
    if (auto r = set_layout(slot, layout->layout); !r) {
      out.reason = r.error().to_string();
      return out;
    }
    out.info["keys"] = fmt::format("layout '{}'", layout->name);
    log().debug("keys: {} layout '{}', key log {}", host_path, layout->name, keys()->keylog_path());
  }
  out.kind = Kind::kHook;
  out.specs = probes(host_path, slot);
  return out;
}

Result<void> TlsLibModule::on_start() {
  if (!host_wide_) {
    const nlohmann::json info = library_info(kind_, lib_path_);
    log().info("library: {} ({})", lib_path_,
               info.value("version", "version unknown: " + info.value("version_error", "")));
  }
  // pcap mode learns the owners of every TLS connection (to drop other processes' packets), so
  // its key probes see all processes; --pid/--uid are applied in user space there.
  const bool all_processes = mode_ == tls::CaptureMode::kPcap;
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes) settings.every_process();
  // Host-wide: the watcher loads on another core meanwhile (the future's end waits for it).
  std::future<Result<std::shared_ptr<tls::TargetWatcher>>> watcher_loaded;
  if (host_wide_) {
    watcher_loaded = tls::acquire_watcher_async({0, settings.uid, btf().custom_path}, log());
  }
  ASSIGN_OR_RETURN(
      skel_, session().load<tlslib_bpf>(settings, tlslib_bpf__open_opts, tlslib_bpf__load,
                                        tlslib_bpf__destroy, [&](tlslib_bpf* sk) -> Result<void> {
                                          // Keylog: the keys' fd comes from the
                                          // connection's last fd only.
                                          if (mode_ == tls::CaptureMode::kKeylog)
                                            bpf::skip_fd_learners(sk->obj);
                                          return {};
                                        }));
  const int pid = all_processes ? -1 : attach_pid();
  const std::string hint = fmt::format("is this the right library? pass it with {}", flag());
  if (host_wide_) {
    return start_targets(
        watcher_loaded,
        {.module = name(),
         .prefixes = {kind_ == LibKind::kGnutls ? "libgnutls" : "libnspr4"},
         .plan = [this](const std::string& path, int slot) { return plan_target(path, slot); },
         .hint = hint,
         .attach_pid = pid,
         .purge_maps = {"tls_conn_fds", "tls_write_marks"}});
  }
  const bool multi = session().loaded().uprobe_multi;
  if (keys_mode()) {
    RETURN_IF_ERROR(set_layout(0, layout_.layout));
    log().info("keys: {} layout '{}', key log {}", lib_path_, layout_.name, keys()->keylog_path());
  }
  ASSIGN_OR_RETURN(auto attached, session().attach(probes(lib_path_, 0), pid, hint));
  std::string hooks;
  for (const auto& a : attached.attached) hooks += (hooks.empty() ? "" : ", ") + a;
  log().info("hooks attached to {} ({}): {}", lib_path_,
             multi ? "uprobe_multi links" : "perf-event uprobes", hooks);
  return {};
}

nlohmann::json TlsLibModule::single_target_report() const {
  nlohmann::json out = nlohmann::json::array();
  if (lib_path_.empty()) return out;
  nlohmann::json t = library_info(kind_, lib_path_);
  t["path"] = lib_path_;
  t["host_path"] = lib_path_;
  t["hooked"] = true;
  t["container"] = "";
  if (kind_ == LibKind::kGnutls) {
    t["keys"] = keys_mode() ? fmt::format("layout '{}'", layout_.name)
                            : std::string("not captured (text mode)");
  }
  out.push_back(std::move(t));
  return out;
}

Result<void> TlsLibModule::on_run() {
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  log_tls_started(host_wide_ ? host_wide_summary("target") : lib_path_);
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
