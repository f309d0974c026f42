// mysqld module: server discovery, signature detection, probe specs, BPF load/attach, delivery.
#include "modules/mysqld/mysqld_module.h"

#include <fstream>
#include <iterator>

#include "bpf/skeleton.h"
#include "core/clock.h"
#include "elf/elf_file.h"
#include "elf/process_discovery.h"

namespace ecapture::mysqld {
namespace {

constexpr const char* kDefaultServer = "/usr/sbin/mariadbd";
constexpr const char* kHint = "is this a MySQL/MariaDB server? pass it with --mysqld";

// What sends an error packet to the client, and the position of its sql_errno argument (the
// probe's cookie). MariaDB inlines Protocol::send_error; its net_send_error_packet is a member.
struct ErrorHook {
  const char* symbol;
  uint64_t errno_arg;
};
constexpr ErrorHook kErrorHooks[] = {
    {"_ZN8Protocol21net_send_error_packetEP3THDjPKcS3_", 3},  // MariaDB
    {"_Z21net_send_error_packetP3THDjPKcS2_", 2},             // MySQL 5.6, 5.7
    {"_ZN16Protocol_classic10send_errorEjPKcS1_", 2},         // MySQL 8.x
};

std::optional<ServerVersion> server_version(const elf::ElfFile& elf) {
  auto rodata = elf.section_data(".rodata");
  if (auto v = sniff_server_version(
          std::string_view(reinterpret_cast<const char*>(rodata.data()), rodata.size()))) {
    return v;
  }
  std::ifstream f(elf.path(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return sniff_server_version(bytes);
}

}  // namespace

void MysqldModule::SkelDeleter::operator()(mysqld_bpf* s) const { mysqld_bpf__destroy(s); }

std::string MysqldModule::locate_server(const MysqldConfig& cfg) {
  if (!cfg.mysqld.empty()) return cfg.mysqld;
  if (cfg.global.pid != 0) return elf::process_exe(static_cast<int>(cfg.global.pid));
  auto running = elf::find_running({"mariadbd", "mysqld"});
  if (!running.empty()) return running.front().path;
  return kDefaultServer;
}

Result<ServerTarget> MysqldModule::inspect(const std::string& path, const MysqldConfig& cfg) {
  ServerTarget t;
  t.path = path;
  auto opened = elf::ElfFile::open(path);
  if (!opened) return make_error("--mysqld: {}", opened.error().to_string());
  auto elf = std::move(opened).value();
  if (!elf->is_native_arch()) {
    return make_error("--mysqld {}: built for another CPU architecture (e_machine {})", path,
                      elf->machine());
  }
  t.version = server_version(*elf);

  if (cfg.offset != 0) {
    auto off = elf->vaddr_to_offset(cfg.offset);
    if (!off) {
      return make_error("--offset {:#x} is not an address inside {}'s code (give the function's "
                        "address as nm shows it)", cfg.offset, path);
    }
    t.offset = *off;
  } else if (!cfg.funcname.empty()) {
    auto sym = elf->find_function(cfg.funcname);
    if (!sym || !sym->defined || sym->file_offset == 0) {
      return make_error("--funcname {}: no such function in {} (list candidates with "
                        "'nm -D {} | grep dispatch_command')", cfg.funcname, path, path);
    }
    t.symbol = cfg.funcname;
    t.offset = sym->file_offset;
  } else {
    for (const auto& s : elf->symbols()) {
      if (s.is_function && s.defined && s.file_offset != 0 &&
          s.name.starts_with("_Z16dispatch_command")) {
        t.symbol = s.name;
        t.offset = s.file_offset;
        break;
      }
    }
    if (t.symbol.empty()) {
      if (!t.version) {
        return make_error("{} is not a MySQL/MariaDB server: no dispatch_command function and "
                          "no server version string in it (pass the mysqld or mariadbd binary "
                          "with --mysqld)", path);
      }
      return make_error("{} ({}) does not export dispatch_command (stripped?): pass its address "
                        "with --offset or another function with --funcname", path,
                        t.version->display());
    }
  }
  ASSIGN_OR_RETURN(t.abi, detect_signature(t.symbol, t.version));
  for (const ErrorHook& h : kErrorHooks) {
    if (auto s = elf->find_function(h.symbol); s && s->defined && s->file_offset != 0) {
      t.error_symbol = h.symbol;
      t.error_errno_arg = h.errno_arg;
      break;
    }
  }
  return t;
}

std::vector<bpf::ProbeSpec> MysqldModule::probes(const ServerTarget& t) {
  using bpf::ProbeType;
  // Hooked by offset, so that --offset and stripped names work alike.
  std::vector<bpf::ProbeSpec> specs = {
      {t.path, "", t.offset, "probe_mysqld_dispatch_enter", ProbeType::kUprobe, false,
       static_cast<uint64_t>(t.abi)},
      {t.path, "", t.offset, "probe_mysqld_dispatch_exit", ProbeType::kUretprobe, false, 0},
  };
  if (!t.error_symbol.empty()) {
    specs.push_back({t.path, t.error_symbol, 0, "probe_mysqld_send_error", ProbeType::kUprobe,
                     true, t.error_errno_arg});
  }
  return specs;
}

Result<void> MysqldModule::on_init() {
  const auto& cfg = config_as<MysqldConfig>();
  std::string path = locate_server(cfg);
  if (path.empty()) {
    return make_error("--pid {}: no such process (give the pid of a running mysqld/mariadbd, or "
                      "the binary with --mysqld)", cfg.global.pid);
  }
  ASSIGN_OR_RETURN(target_, inspect(path, cfg));
  return {};
}

Result<void> MysqldModule::on_start() {
  const auto& cfg = config_as<MysqldConfig>();
  log().info("server: {} ({}); hooking {} as {}", target_.path,
             target_.version ? target_.version->display() : "version unknown",
             target_.symbol.empty() ? fmt::format("offset {:#x}", target_.offset) : target_.symbol,
             signature_name(target_.abi));
  if (target_.error_symbol.empty()) {
    log().warn(
        "no net_send_error_packet/send_error in {}: errors are not reported (status "
        "shows 0)",
        target_.path);
  }
  bpf::SkeletonSettings settings{"mysqld", btf().custom_path, static_cast<uint32_t>(cfg.global.pid),
                                 static_cast<uint32_t>(cfg.global.uid), cfg.global.mapsize};
  bpf::LoadedSkeleton loaded;
  ASSIGN_OR_RETURN(auto* skel,
                   bpf::open_and_load<mysqld_bpf>(settings, log(), mysqld_bpf__open_opts,
                                                  mysqld_bpf__load, mysqld_bpf__destroy, &loaded));
  skel_.reset(skel);
  ringbuf_ = loaded.ringbuf;
  const bool multi = loaded.uprobe_multi;
  ASSIGN_OR_RETURN(links_, bpf::attach_tracepoints(skel_->obj));
  int pid = cfg.global.pid != 0 ? static_cast<int>(cfg.global.pid) : -1;
  ASSIGN_OR_RETURN(auto attached, bpf::attach_uprobes(skel_->obj, probes(target_), pid, kHint,
                                                      multi));
  for (auto& l : attached.links) links_.push_back(std::move(l));
  return {};
}

Result<void> MysqldModule::on_run() {
  const auto& cfg = config_as<MysqldConfig>();
  Flavor flavor = target_.version ? target_.version->flavor : Flavor::kMySql;
  assembler_ =
      std::make_unique<CommandAssembler>(flavor, monotonic_to_wall_ns(), [this](AuditEvent&& e) {
        counters_mut().events.fetch_add(1);
        counters_mut().bytes.fetch_add(e.text.size());
        if (ctx().sink != nullptr) ctx().sink->emit_audit(e);
      });
  ASSIGN_OR_RETURN(reader_, bpf::EventReader::create(
                                skel_->maps.events, ringbuf_, cfg.global.mapsize,
                                [this](std::span<const uint8_t> r) { handle_record(r); }));
  reader_->start();
  log().info("mysqld: capture started ({}{})", target_.path,
             cfg.global.pid ? fmt::format(", pid {}", cfg.global.pid) : "");
  return {};
}

void MysqldModule::handle_record(std::span<const uint8_t> record) {
  if (auto r = assembler_->add(record); !r) {
    if (decode_errors_++ == 0) log().warn("mysqld: {}", r.error().to_string());
  }
}

void MysqldModule::on_stop() {
  bpf::destroy_links(links_);
  if (reader_) reader_->stop();
  counters_mut().lost.store(
      bpf::lost_records(skel_ ? skel_->maps.ecap_counters : nullptr, reader_.get()));
  counters_mut().map_failed.store(
      bpf::map_update_failures(skel_ ? skel_->maps.ecap_counters : nullptr));
}

void MysqldModule::on_close() {
  bpf::destroy_links(links_);
  reader_.reset();
  assembler_.reset();
  skel_.reset();
}

}  // namespace ecapture::mysqld
