// Shared TLS capture plumbing.
#include "modules/openssl/tls_capture.h"

#include <cstring>
#include <ctime>

#include "core/clock.h"

namespace ecapture::openssl {

Result<void> TlsCapture::start(bpf_map* events, bool ringbuf, uint64_t mapsize_pages,
                               spdlog::logger& log, std::string what, RecordHandler own,
                               ChunkAssembler::Emit deliver) {
  log_ = &log;
  what_ = std::move(what);
  if (keys) RETURN_IF_ERROR(keys->start(log));
  assembler_ = std::make_unique<ChunkAssembler>(monotonic_to_wall_ns(), std::move(deliver));
  ASSIGN_OR_RETURN(
      reader_, bpf::EventReader::create(
                   events, ringbuf, mapsize_pages,
                   [this, own = std::move(own)](std::span<const uint8_t> record) {
                     if (own(record)) return;
                     if (auto r = assembler_->add(record); !r && decode_errors_++ == 0) {
                       log_->warn("{}: {}", what_, r.error().to_string());
                     }
                   },
                   [this] {
                     timespec now{};
                     clock_gettime(CLOCK_MONOTONIC, &now);
                     assembler_->tick(static_cast<uint64_t>(now.tv_sec) * 1000000000ull +
                                      static_cast<uint64_t>(now.tv_nsec));
                   }));
  reader_->start();
  return {};
}

Result<bool> TlsCapture::add_keys(std::span<const KeylogLine> lines, std::string_view what,
                                  uint32_t pid, uint32_t uid,
                                  const char (&comm)[ECAP_TASK_COMM_LEN],
                                  const ecap_sock_tuple& tuple) {
  if (lines.empty()) return false;
  const std::string name(comm, strnlen(comm, ECAP_TASK_COMM_LEN));
  ASSIGN_OR_RETURN(bool wanted, keys->add(lines, &tuple, PacketOwner{pid, uid, name}));
  if (wanted && !what.empty() && log_ != nullptr) {
    log_->info("keys: {} pid={} comm={} client_random={} ({} line{})", what, pid, name,
               lines.front().client_random, lines.size(), lines.size() == 1 ? "" : "s");
  }
  return wanted;
}

uint64_t TlsCapture::stop(const bpf_map* counters) {
  bpf::destroy_links(links);      // no new events from here on
  if (reader_) reader_->stop();   // drains what the kernel already produced
  if (assembler_) assembler_->flush();
  if (keys) keys->stop();         // after the last secret: every secret precedes its packets
  return bpf::lost_records(counters, reader_.get()) + (keys ? keys->lost() : 0);
}

void TlsCapture::close() {
  bpf::destroy_links(links);
  reader_.reset();
  assembler_.reset();
  keys.reset();  // removes a key log that a capture which never started created
}

}  // namespace ecapture::openssl
