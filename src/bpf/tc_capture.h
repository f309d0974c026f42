// Whole-packet capture on one interface with tcx links (bpf/tc.bpf.c): links detach when the
// process exits, whatever the way it exits, so no filter or qdisc is ever left behind. A classic
// BPF filter (libpcap's) runs in the kernel in front of the copier: only matching packets reach
// the ring buffer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "bpf/classic_filter.h"
#include "bpf/event_reader.h"
#include "bpf/handles.h"
#include "core/result.h"

struct tc_bpf;

namespace ecapture::bpf {

struct Packet {
  uint64_t mono_ns;
  uint32_t ifindex;
  uint32_t len;
  bool egress;
  std::span<const uint8_t> data;
};

class TcCapture {
 public:
  using Handler = std::function<void(const Packet&)>;
  // On a loopback interface only egress is attached (each packet crosses both hooks there).
  // `filter` (empty: every packet) is run in the kernel; when it cannot be translated the error
  // says why (the caller may then capture everything and filter in user space).
  static Result<std::unique_ptr<TcCapture>> start(const std::string& ifname,
                                                  uint64_t mapsize_pages,
                                                  std::span<const ClassicInsn> filter,
                                                  Handler on_packet, EventReader::Tick tick);
  ~TcCapture();
  void stop();  // detach, drain, join; idempotent
  uint64_t lost() const;
  // --mapsize asked for more than kMaxRingBytes (for the caller's message).
  bool ring_capped() const { return ring_capped_; }

 private:
  TcCapture() = default;
  struct SkelDeleter {
    void operator()(tc_bpf* s) const;
  };
  std::unique_ptr<tc_bpf, SkelDeleter> skel_;
  std::vector<Link> links_;
  std::vector<int> filter_fds_;  // translated filter programs (closed after the links)
  std::unique_ptr<EventReader> reader_;
  Handler handler_;
  bool ring_capped_ = false;
};

}  // namespace ecapture::bpf
