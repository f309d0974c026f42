// libFuzzer target: pcap filter strings (--pcap filter / API "filter") compiled by libpcap and
// run over a frame: the first line is the expression, the rest the frame.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "output/pcap_filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nl = all.find('\n');
  const std::string expression(all.substr(0, nl));
  auto filter = ecapture::PcapFilter::compile(expression);
  if (!filter || nl == std::string_view::npos) return 0;
  std::span<const uint8_t> frame(data + nl + 1, size - nl - 1);
  (void)(*filter)->matches(frame, static_cast<uint32_t>(frame.size()));
  (void)(*filter)->matches(frame, static_cast<uint32_t>(frame.size() + 100));
  return 0;
}
