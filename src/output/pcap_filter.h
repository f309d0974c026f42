// libpcap filter expressions: compiled to classic BPF (run in the kernel by bpf/tc_capture), and
// matched against captured frames in user space. Kept apart from libbpf:
// <pcap/bpf.h> and <linux/bpf.h> cannot share a translation unit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bpf/classic_filter.h"

#include "core/result.h"

namespace ecapture {

class PcapFilter {
 public:
  // Compiles `expression` for Ethernet frames; "" matches everything. The error names the
  // expression and libpcap's reason.
  static Result<std::unique_ptr<PcapFilter>> compile(const std::string& expression);
  ~PcapFilter();
  bool matches(std::span<const uint8_t> frame, uint32_t original_len) const;
  // The compiled classic BPF program (empty for ""), for running it in the kernel.
  std::vector<bpf::ClassicInsn> instructions() const;

 private:
  struct Program;
  PcapFilter() = default;
  std::unique_ptr<Program> prog_;
};

}  // namespace ecapture
