// Configuration of the tls/openssl module (eCapture's `tls` flags).
#pragma once

#include <string>

#include "core/config.h"

namespace ecapture {
class JsonFields;
}

namespace ecapture::openssl {

enum class CaptureMode { kText, kKeylog, kPcap };

// eCapture's JSON names for the capture fields (they differ between its modules).
struct CaptureFieldNames {
  const char* model;
  const char* keylogfile;
  const char* pcapfile;
  const char* ifname;
  const char* pcap_filter;
};

// The capture-mode settings every TLS module (tls, gotls, gnutls) has: -m, -k, -w, -i and the
// trailing pcap filter expression.
struct CaptureFields {
  std::string model = "text";  // -m/--model as given
  std::string keylogfile;
  std::string pcapfile;
  std::string ifname;
  std::string pcap_filter;  // trailing arguments joined with spaces

  CaptureFields(std::string keylog_default, std::string pcap_default)
      : keylogfile(std::move(keylog_default)), pcapfile(std::move(pcap_default)) {}
  // The mode parses, a filter expression comes with pcap mode only, and the file the mode writes
  // is named.
  Result<CaptureMode> validate_capture() const;
  void capture_to_json(const CaptureFieldNames& names, nlohmann::json& j) const;
  // Reads the fields of an API body; check_capture_json reports a bad mode value (after
  // JsonFields::finish, so that unknown fields are reported first).
  Result<void> capture_from_json(JsonFields& f, const CaptureFieldNames& names);
  Result<void> check_capture_json(const CaptureFieldNames& names) const;
};

struct OpenSslConfig : ModuleConfig, CaptureFields {
  OpenSslConfig() : CaptureFields("ecapture_openssl_key.log", "save.pcapng") {}
  std::string libssl;       // --libssl: library or static executable; empty = auto-detect
  std::string ssl_version;  // --ssl_version override

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<OpenSslConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// Parses -m/--model (case-insensitive): text | keylog | key | pcap | pcapng.
Result<CaptureMode> parse_capture_mode(const std::string& model);

// HTTP API body → config (eCapture's OpenSSL field names: opensslpath, capturemode, keylogfile,
// pcapfile, ifname, pcapfilter, sslversion, plus the shared base fields).
Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults);

}  // namespace ecapture::openssl
