// Configuration of the gnutls and nss modules (eCapture's `gnutls` and `nss` flags).
#pragma once

#include <string>

#include "core/config.h"
#include "modules/openssl/openssl_config.h"

namespace ecapture::tlslib {

struct GnutlsConfig : ModuleConfig, openssl::CaptureFields {
  GnutlsConfig() : CaptureFields("ecapture_gnutls_key.log", "save.pcapng") {}
  std::string gnutls;       // --gnutls: libgnutls.so file; empty = auto-detect
  std::string ssl_version;  // --ssl_version override

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<GnutlsConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

struct NssConfig : ModuleConfig {
  std::string nspr;  // --nspr: libnspr4.so file; empty = auto-detect

  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<NssConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// HTTP API bodies → config (eCapture's field names). gnutls: gnutlspath, capturemode,
// keylogfile, pcapfile, ifname, pcapfilter, sslversion; nss: nspr_path; plus the base fields.
Result<std::unique_ptr<ModuleConfig>> gnutls_config_from_json(const nlohmann::json& j,
                                                              const GlobalConfig& defaults);
Result<std::unique_ptr<ModuleConfig>> nss_config_from_json(const nlohmann::json& j,
                                                           const GlobalConfig& defaults);

}  // namespace ecapture::tlslib
