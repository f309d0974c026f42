// Validation and JSON of the gnutls and nss modules' flags.
#include "modules/tlslib/tlslib_config.h"

#include "core/config_json.h"

namespace ecapture::tlslib {

namespace {
constexpr openssl::CaptureFieldNames kJsonNames{"capturemode", "keylogfile", "pcapfile", "ifname",
                                                "pcapfilter"};
}  // namespace

Result<void> GnutlsConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  RETURN_IF_ERROR(validate_capture());
  return {};
}

nlohmann::json GnutlsConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["gnutlspath"] = gnutls;
  capture_to_json(kJsonNames, j);
  j["sslversion"] = ssl_version;
  return j;
}

nlohmann::json NssConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["nspr_path"] = nspr;
  return j;
}

Result<std::unique_ptr<ModuleConfig>> gnutls_config_from_json(const nlohmann::json& j,
                                                              const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<GnutlsConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("gnutlspath", cfg->gnutls));
  RETURN_IF_ERROR(cfg->capture_from_json(f, kJsonNames));
  RETURN_IF_ERROR(f.get("sslversion", cfg->ssl_version));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(cfg->check_capture_json(kJsonNames));
  RETURN_IF_ERROR(check_file_field("gnutlspath", cfg->gnutls));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

Result<std::unique_ptr<ModuleConfig>> nss_config_from_json(const nlohmann::json& j,
                                                           const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<NssConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("nspr_path", cfg->nspr));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(check_file_field("nspr_path", cfg->nspr));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::tlslib
