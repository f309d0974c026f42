// Validation of the tls module's flags.
#include "modules/openssl/openssl_config.h"

#include <algorithm>
#include <cctype>

#include "core/config_json.h"

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

Result<CaptureMode> validate_capture_fields(const std::string& model,
                                            const std::string& pcap_filter,
                                            const std::string& pcapfile,
                                            const std::string& keylogfile) {
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

Result<void> OpenSslConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  RETURN_IF_ERROR(validate_capture_fields(model, pcap_filter, pcapfile, keylogfile));
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

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<OpenSslConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("opensslpath", cfg->libssl));
  RETURN_IF_ERROR(f.get("capturemode", cfg->model));
  RETURN_IF_ERROR(f.get("keylogfile", cfg->keylogfile));
  RETURN_IF_ERROR(f.get("pcapfile", cfg->pcapfile));
  RETURN_IF_ERROR(f.get("ifname", cfg->ifname));
  RETURN_IF_ERROR(f.get("pcapfilter", cfg->pcap_filter));
  RETURN_IF_ERROR(f.get("sslversion", cfg->ssl_version));
  // eCapture reports BoringSSL through this flag; here the library is recognised by itself.
  bool boringssl = false;
  RETURN_IF_ERROR(f.get("isboringssl", boringssl));
  RETURN_IF_ERROR(f.accept_unused({"masterhookfuncs", "sslbpffile", "is_android", "androidver"}));
  RETURN_IF_ERROR(f.finish());
  if (auto mode = parse_capture_mode(cfg->model); !mode) {
    return make_error("field 'capturemode': invalid value '{}': allowed values are text, keylog "
                      "(key), pcap (pcapng)", cfg->model);
  }
  RETURN_IF_ERROR(check_file_field("opensslpath", cfg->libssl));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::openssl
