// Whole-packet capture on one interface with tcx links (bpf/tc.bpf.c): links detach when the
// process exits, whatever the way it exits, so no filter or qdisc is ever left behind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

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
  static Result<std::unique_ptr<TcCapture>> start(const std::string& ifname,
                                                  uint64_t mapsize_pages, Handler on_packet,
                                                  EventReader::Tick tick);
  ~TcCapture();
  void stop();  // detach, drain, join; idempotent
  uint64_t lost() const;

 private:
  TcCapture() = default;
  struct SkelDeleter {
    void operator()(tc_bpf* s) const;
  };
  std::unique_ptr<tc_bpf, SkelDeleter> skel_;
  std::vector<Link> links_;
  std::unique_ptr<EventReader> reader_;
  Handler handler_;
};

}  // namespace ecapture::bpf
