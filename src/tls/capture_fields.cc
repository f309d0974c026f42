// Parsing and checks of the TLS capture-mode settings.
#include "tls/capture_fields.h"

#include <algorithm>
#include <cctype>

namespace ecapture::tls {

Result<CaptureMode> parse_capture_mode(const std::string& model) {
  std::string m = model;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  if (m.empty() || m == "text") return CaptureMode::kText;
  if (m == "keylog" || m == "key") return CaptureMode::kKeylog;
  if (m == "pcap" || m == "pcapng") return CaptureMode::kPcap;
  return make_error("invalid value '{}' for -m/--model: allowed values are text, keylog (key), "
                    "pcap (pcapng)", model);
}

Result<CaptureMode> CaptureFields::validate_capture() const {
  ASSIGN_OR_RETURN(CaptureMode mode, parse_capture_mode(model));
  if (mode != CaptureMode::kPcap && !pcap_filter.empty()) {
    return make_error("a pcap filter expression ('{}') applies to -m pcap only", pcap_filter);
  }
  if (mode == CaptureMode::kPcap && pcapfile.empty()) {
    return make_error("-w/--pcapfile: empty path (give the pcapng file to write)");
  }
  if (mode != CaptureMode::kText && keylogfile.empty()) {
    return make_error("-k/--keylogfile: empty path (give the key log file to write)");
  }
  return mode;
}

Result<void> CaptureFields::check_capture_json(const CaptureFieldNames& names) const {
  if (!parse_capture_mode(model)) {
    return make_error("field '{}': invalid value '{}': allowed values are text, keylog (key), "
                      "pcap (pcapng)", names.model, model);
  }
  return {};
}

}  // namespace ecapture::tls
