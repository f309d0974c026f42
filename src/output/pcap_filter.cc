// libpcap compilation and offline matching.
#include "output/pcap_filter.h"

#include <pcap/pcap.h>

namespace ecapture {

struct PcapFilter::Program {
  bpf_program prog{};
};

Result<std::unique_ptr<PcapFilter>> PcapFilter::compile(const std::string& expression) {
  std::unique_ptr<PcapFilter> f(new PcapFilter());
  if (expression.empty()) return f;
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  if (dead == nullptr) return make_error("libpcap: cannot create a filter context");
  auto p = std::make_unique<Program>();
  if (pcap_compile(dead, &p->prog, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string why = pcap_geterr(dead);
    pcap_close(dead);
    return make_error("invalid pcap filter expression '{}': {}", expression, why);
  }
  pcap_close(dead);
  f->prog_ = std::move(p);
  return f;
}

PcapFilter::~PcapFilter() {
  if (prog_) pcap_freecode(&prog_->prog);
}

std::vector<bpf::ClassicInsn> PcapFilter::instructions() const {
  std::vector<bpf::ClassicInsn> out;
  if (!prog_) return out;
  static_assert(sizeof(bpf::ClassicInsn) == sizeof(bpf_insn), "classic BPF instruction layout");
  for (u_int i = 0; i < prog_->prog.bf_len; ++i) {
    const bpf_insn& in = prog_->prog.bf_insns[i];
    out.push_back({in.code, in.jt, in.jf, in.k});
  }
  return out;
}

bool PcapFilter::matches(std::span<const uint8_t> frame, uint32_t original_len) const {
  if (!prog_) return true;
  pcap_pkthdr h{};
  h.caplen = static_cast<uint32_t>(frame.size());
  h.len = original_len;
  return pcap_offline_filter(&prog_->prog, &h, frame.data()) != 0;
}

}  // namespace ecapture
