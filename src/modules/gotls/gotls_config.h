// Configuration of the gotls module (eCapture's `gotls` flags).
#pragma once

#include <string>

#include "core/config.h"
#include "tls/capture_fields.h"

namespace ecapture::gotls {

struct GoTlsConfig : ConfigOf<GoTlsConfig>, tls::CaptureFields {
  GoTlsConfig() : CaptureFields("ecapture_gotls_key.log", "ecapture_gotls.pcapng") {}
  std::string elfpath;  // -e/--elfpath: the Go program (else the executable of --pid, else
                        // every running Go program using crypto/tls)

  // eCapture's JSON names: elf_path, capture_mode, keylog_file, pcap_file, ifname, pcap_filter.
  const FieldTable& fields() const override;
};

}  // namespace ecapture::gotls
