// The gotls module's settings.
#include "modules/gotls/gotls_config.h"

namespace ecapture::gotls {

const FieldTable& GoTlsConfig::fields() const {
  return field_table<GoTlsConfig>([](FieldTableBuilder<GoTlsConfig>& b) {
    b.file(&GoTlsConfig::elfpath, "-e,--elfpath", {"elf_path"},
           "the Go program to hook (default: with --pid, that process's executable; else every "
           "running Go program that uses crypto/tls)");
    tls::add_capture_rows(b, {"capture_mode", "keylog_file", "pcap_file", "ifname", "pcap_filter"},
                          GoTlsConfig{});
    add_perf_reorder_rows(b);
  });
}

}  // namespace ecapture::gotls
