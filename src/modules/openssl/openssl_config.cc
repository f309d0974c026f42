// Validation of the tls module's flags.
#include "modules/openssl/openssl_config.h"

#include <algorithm>
#include <cctype>

namespace ecapture::openssl {

Result<CaptureMode> parse_capture_mode(const std::string& model) {
  std::string m = model;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  if (m.empty() || m == "text") return CaptureMode::kText;
  if (m == "keylog" || m == "key") return CaptureMode::kKeylog;
  if (m == "pcap" || m == "pcapng") return CaptureMode::kPcap;
  return make_error("invalid value '{}' for -m/--model: allowed values are text, keylog (key), "
                    "pcap (pcapng)", model);
}

Result<void> OpenSslConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  ASSIGN_OR_RETURN(CaptureMode mode, parse_capture_mode(model));
  if (mode != CaptureMode::kText) {
    return make_error("-m {} is not available in this build yet: only -m text captures today",
                      model);
  }
  if (!pcap_filter.empty()) {
    return make_error("a pcap filter expression ('{}') applies to -m pcap only, which is not "
                      "available yet", pcap_filter);
  }
  return {};
}

nlohmann::json OpenSslConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["opensslpath"] = libssl;
  j["capturemode"] = model;
  j["keylogfile"] = keylogfile;
  j["pcapfile"] = pcapfile;
  j["ifname"] = ifname;
  j["sslversion"] = ssl_version;
  j["pcapfilter"] = pcap_filter;
  return j;
}

}  // namespace ecapture::openssl
