// OpenSSL module: library discovery, probe specs, BPF load/attach and event delivery.
#include "core/clock.h"
#include "modules/openssl/openssl_module.h"

#include <unistd.h>

#include "bpf/record.h"
#include "bpf/skeleton.h"
#include "elf/elf_file.h"
#include "elf/lib_discovery.h"
#include "modules/openssl/code_offsets.h"
#include "modules/openssl/openssl_keys.h"


#include <cstring>

#include <fmt/ranges.h>
#include <tuple>

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

std::vector<bpf::ProbeSpec> OpenSslModule::key_probes(const std::string& binary) {
  using bpf::ProbeType;
  // SSL_do_handshake's return gives the keys of explicit handshakes (SSL_connect and SSL_accept
  // run through it); the entries of SSL_read/SSL_write catch implicit ones. One trap per call.
  std::vector<bpf::ProbeSpec> specs = {
      {binary, "SSL_do_handshake", 0, "probe_openssl_rw_enter", ProbeType::kUprobe, false,
       TLS_API_HANDSHAKE},
      {binary, "SSL_do_handshake", 0, "probe_openssl_rw_exit", ProbeType::kUretprobe, false,
       TLS_API_HANDSHAKE},
  };
  for (auto [name, api, optional] :
       {std::tuple{"SSL_write", TLS_API_WRITE, false}, {"SSL_read", TLS_API_READ, false},
        {"SSL_write_ex", TLS_API_WRITE_EX, true}, {"SSL_read_ex", TLS_API_READ_EX, true}}) {
    specs.push_back({binary, name, 0, "probe_openssl_rw_enter", ProbeType::kUprobe, optional,
                     static_cast<uint64_t>(api)});
  }
  return specs;
}

std::vector<bpf::ProbeSpec> OpenSslModule::boringssl_key_probes(const std::string& ssl,
                                                               const std::string& crypto) {
  using bpf::ProbeType;
  // SSL_do_handshake marks the thread as inside a handshake of that SSL* (SSL_read/SSL_write run
  // implicit handshakes through it too); the secrets come from libcrypto's derivations.
  return {
      {ssl, "SSL_do_handshake", 0, "probe_openssl_rw_enter", ProbeType::kUprobe, false,
       TLS_API_HANDSHAKE},
      {ssl, "SSL_do_handshake", 0, "probe_openssl_rw_exit", ProbeType::kUretprobe, false,
       TLS_API_HANDSHAKE},
      {crypto, "HKDF_expand", 0, "probe_bssl_hkdf_enter", ProbeType::kUprobe, false, 0},
      {crypto, "HKDF_expand", 0, "probe_bssl_hkdf_exit", ProbeType::kUretprobe, false, 0},
      {crypto, "CRYPTO_tls1_prf", 0, "probe_bssl_tls1_prf", ProbeType::kUprobe, false, 0},
  };
}

std::vector<bpf::ProbeSpec> OpenSslModule::data_probes(const std::string& binary) {
  using bpf::ProbeType;
  std::vector<bpf::ProbeSpec> specs;
  struct Fn {
    const char* name;
    tls_api api;
    bool optional;  // BoringSSL and OpenSSL < 1.1.1 have no _ex functions
  };
  for (Fn fn : {Fn{"SSL_write", TLS_API_WRITE, false}, Fn{"SSL_read", TLS_API_READ, false},
                Fn{"SSL_write_ex", TLS_API_WRITE_EX, true},
                Fn{"SSL_read_ex", TLS_API_READ_EX, true}}) {
    // Writes on connections whose fd is known are emitted at their entry with no return probe
    // (one trap per SSL_write) where the kernel has session uprobes.
    if ((fn.api == TLS_API_WRITE || fn.api == TLS_API_WRITE_EX) &&
        bpf::uprobe_session_supported()) {
      specs.push_back({binary, fn.name, 0, "probe_openssl_write_session",
                       ProbeType::kUprobeSession, fn.optional, static_cast<uint64_t>(fn.api)});
      continue;
    }
    specs.push_back({binary, fn.name, 0, "probe_openssl_rw_enter", ProbeType::kUprobe,
                     fn.optional, static_cast<uint64_t>(fn.api)});
    specs.push_back({binary, fn.name, 0, "probe_openssl_rw_exit", ProbeType::kUretprobe,
                     fn.optional, static_cast<uint64_t>(fn.api)});
  }
  return specs;
}

Result<void> OpenSslModule::on_init() {
  const auto& cfg = config_as<OpenSslConfig>();
  ASSIGN_OR_RETURN(lib_path_, locate_library(cfg));
  auto opened = elf::ElfFile::open(lib_path_);
  if (!opened) {
    if (cfg.libssl.empty()) return std::move(opened).error();
    return make_error("--libssl: {}", opened.error().to_string());
  }
  auto elf = std::move(opened).value();
  if (!elf->is_native_arch()) {
    return make_error("{} is built for another CPU architecture (e_machine {}); give a library "
                      "for this machine with --libssl", lib_path_, elf->machine());
  }
  if (!elf->find_function("SSL_write") || !elf->find_function("SSL_read")) {
    return make_error("{} does not export SSL_write/SSL_read ({})", lib_path_, kHint);
  }
  if (auto version = elf::detect_ssl_version(lib_path_); version) {
    version_ = std::move(version).value();
  } else {
    version_error_ = version.error().to_string();
  }
  ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  if (mode_ == CaptureMode::kText) return {};

  // Keys need the library's struct layout: chosen from --ssl_version or the detected version,
  // never guessed.
  std::string version_text;
  if (!cfg.ssl_version.empty()) {
    ASSIGN_OR_RETURN(version_text, parse_ssl_version_flag(cfg.ssl_version));
  } else if (!version_) {
    return make_error("cannot capture keys from {}: its OpenSSL version is unknown ({}); name it "
                      "with --ssl_version \"openssl X.Y.Z\"", lib_path_, version_error_);
  } else if (version_->flavor == elf::SslFlavor::kBoringSsl) {
    version_text = kBoringSsl;
  } else {
    version_text = version_->version;
  }
  ASSIGN_OR_RETURN(layout_, layout_for_version(version_text));
  if (layout_.layout.boringssl) {
    if (!elf->find_function("SSL_do_handshake")) {
      return make_error("{} does not export SSL_do_handshake ({})", lib_path_, kHint);
    }
    ASSIGN_OR_RETURN(crypto_path_, find_boringssl_crypto(*elf));
  }
  RETURN_IF_ERROR(check_layout(*elf, !cfg.ssl_version.empty()));
  return open_keys(cfg, mode_);
}

Result<void> OpenSslModule::check_layout(const elf::ElfFile& elf, bool forced) {
  auto check = check_openssl_layout(elf, layout_.layout);
  if (check.mismatches.empty()) {
    offsets_note_ = check.checked.empty()
                        ? "not checked: the library's accessors could not be decoded"
                        : fmt::format("checked against the library's code: {}",
                                      fmt::join(check.checked, ", "));
    return {};
  }
  const std::string what = fmt::format("{}", fmt::join(check.mismatches, "; "));
  if (layout_.layout.boringssl) {
    // Only the client random is read, and the accessor is authoritative about where it is.
    if (auto code = client_random_offsets(elf)) {
      layout_.layout.ssl_s3 = code->ssl_s3;
      layout_.layout.s3_client_random = code->s3_client_random;
    }
    offsets_note_ = "taken from the library's code: " + what;
    return {};
  }
  if (!forced) {
    return make_error("{}: the struct layout of '{}' does not match this build ({}); name a "
                      "matching layout with --ssl_version", lib_path_, layout_.name, what);
  }
  offsets_note_ = "forced with --ssl_version although " + what;
  return {};
}

Result<void> OpenSslModule::on_start() {
  if (version_) {
    log().info("library: {} ({}, version string found in {})", lib_path_, version_->display(),
               version_->source_path);
  } else {
    // The data path does not depend on the library's layout, so text capture goes on.
    log().warn("library: {} (version unknown: {})", lib_path_, version_error_);
  }
  // pcap mode learns the owners of every TLS connection (to drop other processes' packets), so
  // its key probes see all processes; --pid/--uid are applied in user space there.
  const bool all_processes = mode_ == CaptureMode::kPcap;
  bpf::SkeletonSettings settings = skeleton_settings();
  if (all_processes) settings.every_process();
  RETURN_IF_ERROR(session().load<openssl_bpf>(
                       settings, openssl_bpf__open_opts, openssl_bpf__load,
                       openssl_bpf__destroy, [&](openssl_bpf* sk) -> Result<void> {
                         if (mode_ == CaptureMode::kText) return {};
                         // Keylog: the keys' fd comes from the connection's last fd only.
                         if (mode_ == CaptureMode::kKeylog) bpf::skip_fd_learners(sk->obj);
                         sk->rodata->capture_data = false;
                         sk->rodata->capture_keys = true;
                         std::memcpy(const_cast<openssl_layout*>(&sk->rodata->layout),
                                     &layout_.layout, sizeof(openssl_layout));
                         return {};
                       }));
  const bool multi = session().loaded().uprobe_multi;
  if (mode_ != CaptureMode::kText) {
    auto level = offsets_note_.rfind("forced", 0) == 0 ? spdlog::level::warn : spdlog::level::info;
    log().log(level, "keys: {} layout '{}' ({}), key log {}", lib_path_, layout_.name,
              offsets_note_, keys()->keylog_path());
  }
  ASSIGN_OR_RETURN(auto attached,
                   session().attach(mode_ == CaptureMode::kText ? data_probes(lib_path_)
                                    : layout_.layout.boringssl
                                        ? boringssl_key_probes(lib_path_, crypto_path_)
                                        : key_probes(lib_path_),
                                    all_processes ? -1 : attach_pid(), kHint));
  std::string hooks;
  for (const auto& a : attached.attached) hooks += (hooks.empty() ? "" : ", ") + a;
  log().info("hooks attached to {}{} ({}): {}", lib_path_,
             crypto_path_.empty() || crypto_path_ == lib_path_ || mode_ == CaptureMode::kText
                 ? ""
                 : " and " + crypto_path_,
             multi ? "uprobe_multi links" : "perf-event uprobes", hooks);
  for (const auto& m : attached.missing) {
    log().info("{} is not exported by {}: calls through it are not seen (normal for BoringSSL "
               "and OpenSSL < 1.1.1)", m, lib_path_);
  }
  return {};
}

Result<void> OpenSslModule::on_run() {
  const auto& cfg = config_as<OpenSslConfig>();
  RETURN_IF_ERROR(
      start_tls_reading([this](std::span<const uint8_t> r) { return handle_own_record(r); }));
  log_started(fmt::format("{}, {} buffer{}{}", lib_path_,
                          session().loaded().ringbuf ? "ring" : "perf",
                          cfg.global.pid ? fmt::format(", pid {}", cfg.global.pid) : "",
                          cfg.global.uid ? fmt::format(", uid {}", cfg.global.uid) : ""));
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
           !last                           ? ""
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
      {"/tls", "/openssl", "/boringssl"}, "openssl",
      [] { return ModulePtr(new OpenSslModule()); });
}

}  // namespace ecapture::openssl
