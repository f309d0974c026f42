// Text rendering of audit records.
#include "output/audit_text.h"

#include <fmt/format.h>

namespace ecapture {

std::string audit_attr_value(const std::string& v) {
  bool plain = !v.empty();
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') plain = false;
  }
  if (plain) return v;
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string encode_audit_text(const AuditEvent& e, const TextOptions& opt) {
  std::string_view text = e.text;
  if (opt.tsize > 0 && text.size() > opt.tsize) text = text.substr(0, opt.tsize);
  const uint64_t length = std::max<uint64_t>(e.text_length, e.text.size());
  const bool as_hex = opt.hex || !looks_like_text(text);

  std::string out = fmt::format("[{}] {} pid={} tid={} uid={} comm={}{} type={}",
                                format_timestamp(e.timestamp_ns), e.kind, e.pid, e.tid, e.uid,
                                audit_attr_value(e.comm), container_tag(e.cgroup.get()),
                                audit_attr_value(e.type));
  if (e.status == AuditEvent::kStatusUnknown) {
    out += " status=?";
  } else {
    fmt::format_to(std::back_inserter(out), " status={}", e.status);
  }
  if (e.duration_ns == AuditEvent::kDurationUnknown) {
    out += " duration_ns=?";
  } else {
    fmt::format_to(std::back_inserter(out), " duration_ns={}", e.duration_ns);
  }
  for (const auto& [k, v] : e.attrs) {
    fmt::format_to(std::back_inserter(out), " {}={}", k, audit_attr_value(v));
  }
  fmt::format_to(std::back_inserter(out), " len={}", length);
  if (text.size() < length) fmt::format_to(std::back_inserter(out), " shown={}", text.size());
  if (as_hex) {
    out += " hex\n";
    out += hex_dump(text);
    out += '\n';
  } else {
    out += '\n';
    out.append(text);
    out += '\n';
  }
  return out;
}

}  // namespace ecapture
