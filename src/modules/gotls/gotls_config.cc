// Validation of the gotls module's flags.
#include "modules/gotls/gotls_config.h"

#include "core/config_json.h"

namespace ecapture::gotls {

namespace {
constexpr openssl::CaptureFieldNames kJsonNames{"capture_mode", "keylog_file", "pcap_file",
                                                "ifname", "pcap_filter"};
}  // namespace

Result<void> GoTlsConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  if (elfpath.empty() && global.pid == 0) {
    return make_error("-e/--elfpath is required: give the path of the Go program to capture "
                      "(or the --pid of a running one)");
  }
  RETURN_IF_ERROR(validate_capture());
  return {};
}

nlohmann::json GoTlsConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["elf_path"] = elfpath;
  capture_to_json(kJsonNames, j);
  return j;
}

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<GoTlsConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("elf_path", cfg->elfpath));
  RETURN_IF_ERROR(cfg->capture_from_json(f, kJsonNames));
  RETURN_IF_ERROR(f.finish());
  RETURN_IF_ERROR(cfg->check_capture_json(kJsonNames));
  if (cfg->elfpath.empty()) return make_error("field 'elf_path' is required (the Go program)");
  RETURN_IF_ERROR(check_file_field("elf_path", cfg->elfpath));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::gotls
