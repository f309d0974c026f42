// Protocol sniffing and message helpers.
#include "events/parsers/parser.h"

#include <cctype>

namespace ecapture {
namespace {

bool is_method_char(char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }

// "METHOD SP target SP HTTP/1.x" where the line may still be incomplete.
Sniff sniff_request(std::string_view d) {
  size_t i = 0;
  while (i < d.size() && is_method_char(d[i])) ++i;
  if (i == d.size()) return i <= 16 ? Sniff::kNeedMore : Sniff::kOther;
  if (i == 0 || i > 16 || d[i] != ' ') return Sniff::kOther;
  ++i;
  size_t target = i;
  while (i < d.size() && d[i] != ' ' && d[i] != '\r' && d[i] != '\n') {
    auto c = static_cast<unsigned char>(d[i]);
    if (c < 0x21 || c == 0x7f) return Sniff::kOther;
    ++i;
  }
  if (i == d.size()) return i - target <= 8192 ? Sniff::kNeedMore : Sniff::kOther;
  if (i == target || d[i] != ' ') return Sniff::kOther;
  ++i;
  constexpr std::string_view kVersion = "HTTP/1.";
  std::string_view rest = d.substr(i);
  size_t n = std::min(rest.size(), kVersion.size());
  if (rest.substr(0, n) != kVersion.substr(0, n)) return Sniff::kOther;
  if (rest.size() <= kVersion.size()) return Sniff::kNeedMore;
  if (rest[7] != '0' && rest[7] != '1') return Sniff::kOther;
  if (rest.size() == 8) return Sniff::kNeedMore;
  if (rest[8] == '\n') return Sniff::kHttp1Request;
  if (rest[8] != '\r') return Sniff::kOther;
  if (rest.size() == 9) return Sniff::kNeedMore;
  return rest[9] == '\n' ? Sniff::kHttp1Request : Sniff::kOther;
}

// "HTTP/1.x NNN"
Sniff sniff_response(std::string_view d) {
  constexpr std::string_view kVersion = "HTTP/1.";
  size_t n = std::min(d.size(), kVersion.size());
  if (d.substr(0, n) != kVersion.substr(0, n)) return Sniff::kOther;
  static constexpr std::string_view kShape = "HTTP/1.x ddd";
  for (size_t i = kVersion.size(); i < std::min(d.size(), kShape.size()); ++i) {
    char c = d[i];
    bool ok = i == 7   ? (c == '0' || c == '1')
              : i == 8 ? c == ' '
                       : std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (!ok) return Sniff::kOther;
  }
  return d.size() < kShape.size() ? Sniff::kNeedMore : Sniff::kHttp1Response;
}

// A 9-byte frame header: length ≤ 2^24-1, known type, reserved bit clear.
Sniff sniff_frame(std::string_view d, bool http2_conn) {
  if (d.size() < 9) {
    // A SETTINGS frame (server's first bytes) starts with a small length: 00 00 xx 04 00.
    static constexpr uint8_t kSettings[5] = {0x00, 0x00, 0, 0x04, 0x00};
    for (size_t i = 0; i < d.size() && !http2_conn; ++i) {
      uint8_t want = i < 5 ? kSettings[i] : 0;  // then a zero stream id
      if (i != 2 && static_cast<uint8_t>(d[i]) != want) return Sniff::kOther;
    }
    return Sniff::kNeedMore;
  }
  auto b = [&](size_t i) { return static_cast<uint8_t>(d[i]); };
  uint32_t len = (uint32_t{b(0)} << 16) | (uint32_t{b(1)} << 8) | b(2);
  uint8_t type = b(3);
  uint32_t stream =
      ((uint32_t{b(5)} << 24) | (uint32_t{b(6)} << 16) | (uint32_t{b(7)} << 8) | b(8));
  if (stream & 0x80000000u) return Sniff::kOther;
  if (!http2_conn) {
    // Only a SETTINGS frame (not an ACK) on stream 0 starts a server's side.
    if (type == 0x4 && b(4) == 0 && stream == 0 && len % 6 == 0 && len <= 6 * 16) {
      return Sniff::kHttp2Frame;
    }
    return Sniff::kOther;
  }
  return type <= 0x9 ? Sniff::kHttp2Frame : Sniff::kOther;
}

}  // namespace

Sniff sniff(std::string_view d, bool http2_conn) {
  if (d.empty()) return Sniff::kNeedMore;
  size_t n = std::min(d.size(), kHttp2Preface.size());
  if (d.substr(0, n) == kHttp2Preface.substr(0, n)) {
    return d.size() >= kHttp2Preface.size() ? Sniff::kHttp2Preface : Sniff::kNeedMore;
  }
  if (d[0] == 'H') {
    Sniff r = sniff_response(d);
    if (r != Sniff::kOther) return r;
  }
  if (is_method_char(d[0])) return sniff_request(d);
  return sniff_frame(d, http2_conn);
}

DataEvent meta_of(const DataEvent& e) {
  // Every field but the bytes. The binding names every member: a new one fails to compile here
  // until it is decided whether messages carry it.
  [[maybe_unused]] const auto& [timestamp_ns, pid, tid, uid, comm, fd, direction, src, dst, length,
                                payload, source, conn_id, cgroup] = e;
  return DataEvent(timestamp_ns, pid, tid, uid, comm, fd, direction, src, dst, 0, {}, source,
                   conn_id, cgroup);
}

Message raw_message(const DataEvent& meta, std::string bytes, uint64_t lost) {
  Message m;
  m.event = meta_of(meta);
  m.event.length = bytes.size() + lost;
  m.wire_bytes = m.event.length;
  m.event.payload = std::move(bytes);
  return m;
}

}  // namespace ecapture
