// Configuration of the gnutls and nss modules (eCapture's `gnutls` and `nss` flags).
#pragma once

#include <string>

#include "core/config.h"
#include "tls/capture_fields.h"

namespace ecapture::tlslib {

struct GnutlsConfig : ConfigOf<GnutlsConfig>, tls::CaptureFields {
  GnutlsConfig() : CaptureFields("ecapture_gnutls_key.log", "save.pcapng") {}
  std::string gnutls;       // --gnutls: libgnutls.so file; empty = auto-detect
  std::string ssl_version;  // --ssl_version override

  // eCapture's JSON names: gnutlspath, capturemode, keylogfile, pcapfile, ifname, pcapfilter,
  // sslversion.
  const FieldTable& fields() const override;
};

struct NssConfig : ConfigOf<NssConfig> {
  std::string nspr;  // --nspr: libnspr4.so file; empty = auto-detect

  // eCapture's JSON name: nspr_path.
  const FieldTable& fields() const override;
};

}  // namespace ecapture::tlslib
