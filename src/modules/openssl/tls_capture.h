// The user-space half that every TLS module (tls, gotls, gnutls, nss) shares: the BPF links, the
// event reader feeding plaintext records to a ChunkAssembler, and the key output of keylog and
// pcap modes. stop() runs in the order that loses nothing: detach, drain the buffer, flush the
// assembler, then close the pcapng (after the last secret).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "core/result.h"
#include "ecap_abi.h"
#include "events/event.h"
#include "modules/openssl/openssl_events.h"
#include "output/tls_key_output.h"

struct bpf_map;

namespace ecapture::openssl {

class TlsCapture {
 public:
  // Takes a record the module decodes itself (keys); returns false for plaintext records.
  using RecordHandler = std::function<bool(std::span<const uint8_t>)>;

  std::vector<bpf::Link> links;
  std::unique_ptr<TlsKeyOutput> keys;  // keylog and pcap modes; null in text mode

  // Starts the key output (if any), then reads `events`: each record goes to `own` first, and
  // the ones it leaves to the assembler, whose calls reach `deliver`. `what` prefixes warnings.
  Result<void> start(bpf_map* events, bool ringbuf, uint64_t mapsize_pages, spdlog::logger& log,
                     std::string what, RecordHandler own, ChunkAssembler::Emit deliver);
  // One session's key log lines from the process a kernel record names (pid, uid, comm, the
  // connection's tuple) to the key output; then, unless `what` is empty, the log line
  // "keys: <what> pid=… comm=… client_random=… (N lines)". Returns false when --pid/--uid
  // exclude the process.
  Result<bool> add_keys(std::span<const KeylogLine> lines, std::string_view what, uint32_t pid,
                        uint32_t uid, const char (&comm)[ECAP_TASK_COMM_LEN],
                        const ecap_sock_tuple& tuple);
  // Detaches the probes, drains what the kernel produced, flushes everything held. Returns the
  // records lost: the BPF side's counters (`counters`, may be null), the reader's and the pcap's.
  uint64_t stop(const bpf_map* counters);
  // Releases everything (after stop, or after a start that failed half way).
  void close();

 private:
  std::unique_ptr<ChunkAssembler> assembler_;
  std::unique_ptr<bpf::EventReader> reader_;
  spdlog::logger* log_ = nullptr;
  std::string what_;
  uint64_t decode_errors_ = 0;
};

}  // namespace ecapture::openssl
