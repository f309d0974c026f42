// TlsModule: reassembly, delivery and key output shared by the TLS modules.
#include "tls/tls_module.h"

#include <fmt/format.h>

#include <cstring>

#include "core/cgroup.h"
#include "core/clock.h"
#include "core/sink.h"

namespace ecapture::tls {

Result<std::shared_ptr<KeyOutput>> TlsModule::open_key_output(const CaptureFields& f,
                                                              CaptureMode mode,
                                                              const GlobalConfig& g) {
  OwnerFilter owners{g.pid, g.uid, ""};
  if (!g.cgroup_path.empty()) {
    ASSIGN_OR_RETURN(const CgroupDir dir, resolve_cgroup_dir(g.cgroup_path));
    owners.cgroup = dir.path;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<KeyOutput> out,
                   KeyOutput::open({mode == CaptureMode::kPcap, f.keylogfile, f.pcapfile, f.ifname,
                                    f.pcap_filter, owners, g.mapsize}));
  return out;
}

nlohmann::json TlsModule::target_report() const {
  return targets_ ? targets_->report() : single_target_report();
}

std::string TlsModule::host_wide_summary(std::string_view noun) {
  const size_t n = targets_ ? targets_->hooked() : 0;
  return fmt::format("host-wide, {} {}{} hooked with {}", n, noun, n == 1 ? "" : "s",
                     session().loaded().uprobe_multi ? "uprobe_multi links" : "perf-event uprobes");
}

Result<void> TlsModule::start_targets(std::future<Result<std::shared_ptr<TargetWatcher>>>& watcher,
                                      HostWide hw) {
  RETURN_IF_ERROR(session().attach({}, hw.attach_pid, hw.hint));
  ASSIGN_OR_RETURN(auto w, watcher.get());
  ASSIGN_OR_RETURN(targets_, start_host_wide(session(), log(), std::move(w), std::move(hw)));
  return {};
}

void TlsModule::log_tls_started(std::string_view target) {
  const GlobalConfig& g = config()->global;
  log_started(fmt::format("{}, {} buffer{}{}", target, session().loaded().ringbuf ? "ring" : "perf",
                          g.pid ? fmt::format(", pid {}", g.pid) : "",
                          g.uid ? fmt::format(", uid {}", g.uid) : ""));
}

void TlsModule::on_detaching() {
  if (targets_) targets_->stop();
}

Result<void> TlsModule::open_keys(const CaptureFields& f, CaptureMode mode) {
  if (mode == CaptureMode::kText) return {};
  if (shared_keys_) {
    keys_ = shared_keys_;
    return {};
  }
  ASSIGN_OR_RETURN(keys_, open_key_output(f, mode, config()->global));
  return {};
}

Result<void> TlsModule::start_tls_reading(OwnRecords own) {
  if (keys_ && !shared_keys_) RETURN_IF_ERROR(keys_->start(log()));
  assembler_ = std::make_unique<ChunkAssembler>(monotonic_to_wall_ns(),
                                                [this](DataEvent&& e) { deliver(std::move(e)); });
  return start_reading(
      [this, own = std::move(own)](std::span<const uint8_t> record) -> Result<void> {
        ASSIGN_OR_RETURN(bool handled, own(record));
        if (handled) return {};
        return assembler_->add(record);
      },
      [this] { assembler_->tick(monotonic_now_ns()); });
}

void TlsModule::add_keys(std::span<const KeylogLine> lines, std::string_view what, uint32_t pid,
                         uint32_t uid, const char (&comm)[ECAP_TASK_COMM_LEN],
                         const ecap_sock_tuple& tuple, uint64_t cgroup_id) {
  if (lines.empty() || !keys_) return;
  const std::string name(comm, strnlen(comm, ECAP_TASK_COMM_LEN));
  auto wanted = keys_->add(lines, &tuple, PacketOwner{pid, uid, name, cgroup_id});
  if (!wanted) {
    report_error(wanted.error());
    return;
  }
  if (!*wanted || what.empty()) return;
  counters_mut().events.fetch_add(1);
  log().info("keys: {} pid={} comm={} client_random={} ({} line{})", what, pid, name,
             lines.front().client_random, lines.size(), lines.size() == 1 ? "" : "s");
}

void TlsModule::deliver(DataEvent&& e) {
  e.source = source_;
  counters_mut().events.fetch_add(1);
  counters_mut().bytes.fetch_add(e.payload.size());
  if (ctx().sink != nullptr) ctx().sink->emit(e);
}

void TlsModule::on_drained() {
  if (assembler_) assembler_->flush();
  if (keys_ && !shared_keys_) {
    keys_->stop();  // after the last secret: every secret precedes its packets
    counters_mut().lost.fetch_add(keys_->lost());
  }
}

void TlsModule::on_release() {
  assembler_.reset();
  keys_.reset();  // removes a key log that a capture which never started created
}

}  // namespace ecapture::tls
