// tcx attach (raw BPF_LINK_CREATE: libbpf 1.1 predates it) and the packet reader.
#include "bpf/tc_capture.h"

#include <bpf/bpf.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "bpf/record.h"

#include "bpf/libbpf_env.h"
#include "tc.skel.h"
#include "tc_abi.h"

namespace ecapture::bpf {
namespace {

constexpr int kTcxIngress = 46;  // enum bpf_attach_type BPF_TCX_INGRESS
constexpr int kTcxEgress = 47;   // BPF_TCX_EGRESS

bool is_loopback(const std::string& ifname) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return ifname == "lo";
  ifreq req{};
  std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  bool lo = ::ioctl(s, SIOCGIFFLAGS, &req) == 0 && (req.ifr_flags & IFF_LOOPBACK);
  ::close(s);
  return lo;
}

}  // namespace

void TcCapture::SkelDeleter::operator()(tc_bpf* s) const { tc_bpf__destroy(s); }

Result<std::unique_ptr<TcCapture>> TcCapture::start(const std::string& ifname,
                                                    uint64_t mapsize_pages,
                                                    std::span<const ClassicInsn> filter,
                                                    Handler on_packet, EventReader::Tick tick) {
  unsigned ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) {
    return make_error("-i {}: no such network interface (see `ip link`)", ifname);
  }
  std::unique_ptr<TcCapture> c(new TcCapture());
  c->handler_ = std::move(on_packet);
  c->skel_.reset(tc_bpf__open());
  if (!c->skel_) return make_errno_error(errno, "cannot open the packet capture BPF object");
  const bool ringbuf = ringbuf_supported();
  c->skel_->rodata->use_ringbuf = ringbuf;
  RingSize ring;
  ASSIGN_OR_RETURN(uint64_t ring_bytes,
                   configure_event_map(c->skel_->maps.events, ringbuf, mapsize_pages, &ring));
  c->ring_capped_ = ring.capped;
  c->skel_->rodata->ringbuf_wakeup_bytes = ring_bytes / 4;
  int cpus = libbpf_num_possible_cpus();
  bpf_map__set_max_entries(c->skel_->maps.pkt_scratch, static_cast<uint32_t>(cpus > 0 ? cpus : 1));
  if (int err = tc_bpf__load(c->skel_.get()); err != 0) {
    return make_errno_error(err, "cannot load the packet capture BPF programs");
  }
  // With a filter, the attached program is the translated filter, which tail-calls the copier
  // (slot 0 ingress, 1 egress of capture_progs) for the packets it accepts.
  auto entry = [&](bpf_program* copier, uint32_t slot) -> Result<int> {
    int copier_fd = bpf_program__fd(copier);
    if (filter.empty()) return copier_fd;
    int progs = bpf_map__fd(c->skel_->maps.capture_progs);
    if (bpf_map_update_elem(progs, &slot, &copier_fd, BPF_ANY) != 0) {
      return make_errno_error(errno, "cannot register the packet copier for the pcap filter");
    }
    ASSIGN_OR_RETURN(int fd, load_classic_filter(filter, progs, slot,
                                                 slot == 0 ? "ecap_pcap_in" : "ecap_pcap_out"));
    c->filter_fds_.push_back(fd);
    return fd;
  };
  auto attach = [&](bpf_program* copier, int type) -> Result<void> {
    ASSIGN_OR_RETURN(int prog_fd, entry(copier, type == kTcxIngress ? 0 : 1));
    int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex),
                             static_cast<bpf_attach_type>(type), nullptr);
    if (fd < 0) {
      return make_errno_error(-fd, "cannot attach packet capture to {} (tcx links need Linux "
                                   "6.6 or newer)", ifname);
    }
    c->links_.push_back(Link::from_fd(fd));
    return {};
  };
  RETURN_IF_ERROR(attach(c->skel_->progs.ecap_tc_egress, kTcxEgress));
  if (!is_loopback(ifname)) RETURN_IF_ERROR(attach(c->skel_->progs.ecap_tc_ingress, kTcxIngress));

  TcCapture* self = c.get();
  ASSIGN_OR_RETURN(c->reader_,
                   EventReader::create(
                       c->skel_->maps.events, ringbuf, mapsize_pages,
                       [self](std::span<const uint8_t> r) -> Result<void> {
                         ASSIGN_OR_RETURN(auto h, read_struct<tc_packet_event>(r, "packet"));
                         ASSIGN_OR_RETURN(auto data, payload_after<tc_packet_event>(
                                                         r, h.caplen, r.size(), "packet"));
                         self->handler_(
                             Packet{h.timestamp_ns, h.ifindex, h.len, h.egress != 0, data});
                         return {};
                       },
                       std::move(tick)));
  c->reader_->start();
  return c;
}

TcCapture::~TcCapture() { stop(); }

void TcCapture::stop() {
  destroy_links(links_);
  for (int fd : filter_fds_) ::close(fd);
  filter_fds_.clear();
  if (reader_) reader_->stop();
}

uint64_t TcCapture::lost() const {
  uint64_t lost = reader_ ? reader_->lost() : 0;
  if (skel_) lost += read_percpu_counter(skel_->maps.ecap_counters, ECAP_CNT_LOST);
  return lost;
}

}  // namespace ecapture::bpf
