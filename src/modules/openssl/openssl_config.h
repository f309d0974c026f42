// Configuration of the tls/openssl module (eCapture's `tls` flags).
#pragma once

#include <string>

#include "core/config.h"

namespace ecapture::openssl {

enum class CaptureMode { kText, kKeylog, kPcap };

struct OpenSslConfig : ModuleConfig {
  std::string libssl;        // --libssl: library or static executable; empty = auto-detect
  std::string model = "text";  // -m/--model as given
  std::string keylogfile = "ecapture_openssl_key.log";
  std::string pcapfile = "save.pcapng";
  std::string ifname;
  std::string ssl_version;   // --ssl_version override
  std::string pcap_filter;   // trailing arguments joined with spaces

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<OpenSslConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// Parses -m/--model (case-insensitive): text | keylog | key | pcap | pcapng.
Result<CaptureMode> parse_capture_mode(const std::string& model);

// The capture-mode fields of every TLS module (tls, gotls, gnutls): the mode parses, a filter
// expression comes with pcap mode only, and the file the mode writes is named.
Result<CaptureMode> validate_capture_fields(const std::string& model,
                                            const std::string& pcap_filter,
                                            const std::string& pcapfile,
                                            const std::string& keylogfile);

// HTTP API body → config (eCapture's OpenSSL field names: opensslpath, capturemode, keylogfile,
// pcapfile, ifname, pcapfilter, sslversion, plus the shared base fields).
Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults);

}  // namespace ecapture::openssl
