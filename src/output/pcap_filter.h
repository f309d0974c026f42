// libpcap filter expressions applied to captured frames in user space. Kept apart from libbpf:
// <pcap/bpf.h> and <linux/bpf.h> cannot share a translation unit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace ecapture {

class PcapFilter {
 public:
  // Compiles `expression` for Ethernet frames; "" matches everything. The error names the
  // expression and libpcap's reason.
  static Result<std::unique_ptr<PcapFilter>> compile(const std::string& expression);
  ~PcapFilter();
  bool matches(std::span<const uint8_t> frame, uint32_t original_len) const;

 private:
  struct Program;
  PcapFilter() = default;
  std::unique_ptr<Program> prog_;
};

}  // namespace ecapture
