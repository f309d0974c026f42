// Validation of the gotls module's flags.
#include "modules/gotls/gotls_config.h"

#include "core/config_json.h"

namespace ecapture::gotls {

Result<void> GoTlsConfig::validate() const {
  RETURN_IF_ERROR(ModuleConfig::validate());
  if (elfpath.empty() && global.pid == 0) {
    return make_error("-e/--elfpath is required: give the path of the Go program to capture "
                      "(or the --pid of a running one)");
  }
  RETURN_IF_ERROR(validate_capture_fields(model, pcap_filter, pcapfile, keylogfile));
  return {};
}

nlohmann::json GoTlsConfig::to_json() const {
  nlohmann::json j = ModuleConfig::to_json();
  j["elf_path"] = elfpath;
  j["capture_mode"] = model;
  j["keylog_file"] = keylogfile;
  j["pcap_file"] = pcapfile;
  j["ifname"] = ifname;
  j["pcap_filter"] = pcap_filter;
  return j;
}

Result<std::unique_ptr<ModuleConfig>> config_from_json(const nlohmann::json& j,
                                                       const GlobalConfig& defaults) {
  JsonFields f(j);
  auto cfg = std::make_unique<GoTlsConfig>();
  RETURN_IF_ERROR(global_from_json(f, defaults, cfg->global));
  RETURN_IF_ERROR(f.get("elf_path", cfg->elfpath));
  RETURN_IF_ERROR(f.get("capture_mode", cfg->model));
  RETURN_IF_ERROR(f.get("keylog_file", cfg->keylogfile));
  RETURN_IF_ERROR(f.get("pcap_file", cfg->pcapfile));
  RETURN_IF_ERROR(f.get("ifname", cfg->ifname));
  RETURN_IF_ERROR(f.get("pcap_filter", cfg->pcap_filter));
  RETURN_IF_ERROR(f.finish());
  if (auto mode = parse_capture_mode(cfg->model); !mode) {
    return make_error("field 'capture_mode': invalid value '{}': allowed values are text, keylog "
                      "(key), pcap (pcapng)", cfg->model);
  }
  if (cfg->elfpath.empty()) return make_error("field 'elf_path' is required (the Go program)");
  RETURN_IF_ERROR(check_file_field("elf_path", cfg->elfpath));
  return std::unique_ptr<ModuleConfig>(std::move(cfg));
}

}  // namespace ecapture::gotls
