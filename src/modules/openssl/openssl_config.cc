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

namespace {
constexpr CaptureFieldNames kJsonNames{"capturemode", "keylogfile", "pcapfile", "ifname",
                                       "pcapfilter"};
}  // namespace

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

void CaptureFields::capture_to_json(const CaptureFieldNames& names, nlohmann::json& j) const {
  j[names.model] = model;
  j[names.keylogfile] = keylogfile;
  j[names.pcapfile] = pcapfile;
  j[names.ifname] = ifname;
  j[names.pcap_filter] = pcap_filter;
}

Result<void> CaptureFields::capture_from_json(JsonFields& f, const CaptureFieldNames& names) {
  RETURN_IF_ERROR(f.get(names.model, model));
  RETURN_IF_ERROR(f.get(names.keylogfile, keylogfile));
  RETURN_IF_ERROR(f.get(names.pcapfile, pcapfile));
  RETURN_IF_ERROR(f.get(names.ifname, ifname));
  RETURN_IF_ERROR(f.get(names.pcap_filter, pcap_filter));
  return {};
}

Result<void> CaptureFields::check_capture_json(const CaptureFieldNames& names) const {
  if (!parse_capture_mode(model)) {
    return make_error("field '{}': invalid value '{}': allowed values are text, keylog (key), "
                      "pcap (pcapng)", names.model, model);
  }
  return {};
}

Result<void> OpenSslConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  RETURN_IF_ERROR(validate_capture());
  return {};
}

nlohmann::json OpenSslConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["opensslpath"] = libssl;
  capture_to_json(kJsonNames, j);
  j["sslversion"] = ssl_version;
  return j;
}

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<OpenSslConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("opensslpath", cfg->libssl));
  RETURN_IF_ERROR(cfg->capture_from_json(f, kJsonNames));
  RETURN_IF_ERROR(f.get("sslversion", cfg->ssl_version));
  // eCapture reports BoringSSL through this flag; here the library is recognised by itself.
  bool boringssl = false;
  RETURN_IF_ERROR(f.get("isboringssl", boringssl));
  RETURN_IF_ERROR(f.accept_unused({"masterhookfuncs", "sslbpffile", "is_android", "androidver"}));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(cfg->check_capture_json(kJsonNames));
  RETURN_IF_ERROR(check_file_field("opensslpath", cfg->libssl));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::openssl
