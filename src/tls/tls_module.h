// The base of every TLS module (tls, gotls, gnutls, nss): a CaptureModule whose plaintext records
// (tls_abi.h) are reassembled by one ChunkAssembler and delivered as DataEvents, and whose keys
// (keylog and pcap modes) go to one KeyOutput. Stop order: detach, drain, flush the assembler,
// then close the pcapng (after the last secret).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "bpf/capture_module.h"
#include "core/result.h"
#include "ecap_abi.h"
#include "events/event.h"
#include "tls/capture_fields.h"
#include "tls/chunk_assembler.h"
#include "tls/key_output.h"
#include "tls/target_set.h"

namespace ecapture::tls {

class TlsModule : public bpf::CaptureModule {
 public:
  // `source` names the library in each event ("openssl", "gotls", "gnutls", "nss").
  TlsModule(std::string name, std::string source)
      : CaptureModule(std::move(name)), source_(std::move(source)) {}

  // Before init: keylog and pcap modes write to `shared` (one key log and one pcapng for several
  // modules, `ecapture all`) instead of opening their own. Its owner starts it before running
  // this module and stops it after stopping it.
  void share_keys(std::shared_ptr<KeyOutput> shared) { shared_keys_ = std::move(shared); }
  // The key output of capture settings `f` in `mode` (keylog or pcap) with the filters of `g`.
  static Result<std::shared_ptr<KeyOutput>> open_key_output(const CaptureFields& f,
                                                            CaptureMode mode,
                                                            const GlobalConfig& g);

  // Host-wide: the target set's report; with one explicit target, single_target_report().
  nlohmann::json target_report() const override;

 protected:
  // Host-wide mode: the module's targets (none with one explicit target). They are stopped
  // before the session detaches.
  void set_targets(std::unique_ptr<TargetSet> targets) { targets_ = std::move(targets); }
  TargetSet* targets() const { return targets_.get(); }
  // Host-wide start: the session's tracepoints now, the uprobes per target as processes use
  // them, once the watcher (loading meanwhile) is there.
  Result<void> start_targets(std::future<Result<std::shared_ptr<TargetWatcher>>>& watcher,
                             HostWide hw);
  // The started line's "host-wide, N <noun>s hooked with <attach method>".
  std::string host_wide_summary(std::string_view noun);
  // "<name>: capture started (<target>, ring buffer, pid N, uid N)".
  void log_tls_started(std::string_view target);
  // The report of the one explicit target (an array of at most one entry).
  virtual nlohmann::json single_target_report() const { return nlohmann::json::array(); }
  void on_detaching() override;

  // A record the module decodes itself (keys): true when it was one, false for plaintext.
  using OwnRecords = std::function<Result<bool>(std::span<const uint8_t>)>;

  // Keylog and pcap modes: checks the key output's settings and opens the key log (from init).
  Result<void> open_keys(const CaptureFields& f, CaptureMode mode);
  KeyOutput* keys() const { return keys_.get(); }
  // Starts the key output (if any), then reads the session's events: each record goes to `own`
  // first, the others to the assembler, whose calls are delivered to the sink.
  Result<void> start_tls_reading(OwnRecords own);
  // One session's key log lines from the process a kernel record names, to the key output; then,
  // unless `what` is empty, the log line "keys: <what> pid=… comm=… client_random=… (N lines)" and
  // one event. A key output that cannot write ends the capture (module error).
  void add_keys(std::span<const KeylogLine> lines, std::string_view what, uint32_t pid,
                uint32_t uid, const char (&comm)[ECAP_TASK_COMM_LEN], const ecap_sock_tuple& tuple,
                uint64_t cgroup_id);

  void on_drained() override;
  void on_release() override;

 private:
  void deliver(DataEvent&& e);

  std::string source_;
  std::unique_ptr<ChunkAssembler> assembler_;
  std::shared_ptr<KeyOutput> keys_;         // keylog and pcap modes; null in text mode
  std::shared_ptr<KeyOutput> shared_keys_;  // share_keys(): started and stopped by its owner
  std::unique_ptr<TargetSet> targets_;      // host-wide mode
};

}  // namespace ecapture::tls
