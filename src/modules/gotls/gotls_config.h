// Configuration of the gotls module (eCapture's `gotls` flags).
#pragma once

#include <string>

#include "core/config.h"
#include "modules/openssl/openssl_config.h"

namespace ecapture::gotls {

using openssl::CaptureMode;
using openssl::parse_capture_mode;

struct GoTlsConfig : ModuleConfig, openssl::CaptureFields {
  GoTlsConfig() : CaptureFields("ecapture_gotls_key.log", "ecapture_gotls.pcapng") {}
  std::string elfpath;  // -e/--elfpath: the Go program (else the executable of --pid)

  Result<void> validate() const override;
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<GoTlsConfig>(*this);
  }
  nlohmann::json to_json() const override;
};

// HTTP API body → config (eCapture's field names: elf_path, capture_mode, keylog_file, pcap_file,
// ifname, pcap_filter, plus the shared base fields).
Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults);

}  // namespace ecapture::gotls
