// The gotls module's settings.
#include "modules/gotls/gotls_config.h"

namespace ecapture::gotls {

const FieldTable& GoTlsConfig::fields() const {
  return field_table<GoTlsConfig>([](FieldTableBuilder<GoTlsConfig>& b) {
    b.file(&GoTlsConfig::elfpath, "-e,--elfpath", {"elf_path"},
           "the Go program to hook (default with --pid: that process's executable)");
    tls::add_capture_rows(b, {"capture_mode", "keylog_file", "pcap_file", "ifname", "pcap_filter"},
                          GoTlsConfig{});
    add_perf_reorder_rows(b);
    b.check([](const GoTlsConfig& c) -> Result<void> {
      if (c.elfpath.empty() && c.global.pid == 0) {
        return make_error(
            "-e/--elfpath is required: give the path of the Go program to capture "
            "(or the --pid of a running one)");
      }
      return {};
    });
    b.check_json([](const GoTlsConfig& c) -> Result<void> {
      if (c.elfpath.empty()) return make_error("field 'elf_path' is required (the Go program)");
      return {};
    });
  });
}

}  // namespace ecapture::gotls
