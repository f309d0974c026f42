// Text rendering of events.
#include "output/text_encoder.h"

#include <ctime>

#include <fmt/format.h>

namespace ecapture {

std::string format_timestamp(uint64_t wall_ns) {
  time_t secs = static_cast<time_t>(wall_ns / 1000000000ull);
  tm local{};
  localtime_r(&secs, &local);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &local);
  return fmt::format("{}.{:06}", buf, (wall_ns % 1000000000ull) / 1000);
}

bool looks_like_text(std::string_view data) {
  size_t i = 0;
  while (i < data.size()) {
    auto c = static_cast<unsigned char>(data[i]);
    if (c < 0x80) {
      if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    // A UTF-8 sequence: lead byte then 1-3 continuation bytes.
    size_t extra = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
    if (extra == 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if (i + k >= data.size()) return true;  // cut inside the last character: still text
      if ((static_cast<unsigned char>(data[i + k]) & 0xc0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Lines of "oooooooo  xx xx xx xx xx xx xx xx  xx xx xx xx xx xx xx xx  |cccccccccccccccc|\n"
// written straight into a buffer sized once: no formatting call per byte.
std::string hex_dump(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr size_t kLine = 8 + 2 + 16 * 3 + 1 + 2 + 16 + 2;  // 79
  std::string out;
  out.resize((data.size() + 15) / 16 * kLine);
  char* p = out.data();
  for (size_t off = 0; off < data.size(); off += 16) {
    size_t n = std::min<size_t>(16, data.size() - off);
    for (int shift = 28; shift >= 0; shift -= 4) *p++ = kHex[(off >> shift) & 0xf];
    *p++ = ' ';
    *p++ = ' ';
    for (size_t i = 0; i < 16; ++i) {
      if (i < n) {
        auto c = static_cast<unsigned char>(data[off + i]);
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 0xf];
      } else {
        *p++ = ' ';
        *p++ = ' ';
      }
      *p++ = ' ';
      if (i == 7) *p++ = ' ';
    }
    *p++ = ' ';
    *p++ = '|';
    for (size_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(data[off + i]);
      *p++ = (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
    }
    *p++ = '|';
    *p++ = '\n';
  }
  out.resize(static_cast<size_t>(p - out.data()));
  return out;
}

std::string container_tag(const CgroupInfo* cgroup) {
  if (cgroup == nullptr || cgroup->container_id.empty()) return "";
  return " container=" + short_container_id(cgroup->container_id);
}

std::string encode_text(const DataEvent& e, const TextOptions& opt) {
  std::string_view payload = e.payload;
  bool truncated = false;
  if (opt.tsize > 0 && payload.size() > opt.tsize) {
    payload = payload.substr(0, opt.tsize);
    truncated = true;
  }
  // A message whose chunks were lost shows fewer bytes than the call moved.
  if (payload.size() < e.length) truncated = true;
  bool as_hex = opt.hex || !looks_like_text(payload);

  std::string out = fmt::format("[{}] {} pid={} tid={} uid={} comm={}{} fd={} {} -> {} len={}",
                                format_timestamp(e.timestamp_ns), to_string(e.direction), e.pid,
                                e.tid, e.uid, e.comm, container_tag(e.cgroup.get()), e.fd,
                                e.src.to_string(), e.dst.to_string(), e.length);
  if (truncated) fmt::format_to(std::back_inserter(out), " shown={}", payload.size());
  if (as_hex) {
    out += " hex\n";
    out += hex_dump(payload);
    out += '\n';
  } else {
    out += '\n';
    out.append(payload);
    out += '\n';
  }
  return out;
}

}  // namespace ecapture
