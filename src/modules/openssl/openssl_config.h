// Configuration of the tls/openssl module (eCapture's `tls` flags).
#pragma once

#include <string>

#include "core/config.h"
#include "tls/capture_fields.h"

namespace ecapture::openssl {

struct OpenSslConfig : ConfigOf<OpenSslConfig>, tls::CaptureFields {
  OpenSslConfig() : CaptureFields("ecapture_openssl_key.log", "save.pcapng") {}
  std::string libssl;       // --libssl: library or static executable; empty = auto-detect
  std::string ssl_version;  // --ssl_version override

  // eCapture's JSON names: opensslpath, capturemode, keylogfile, pcapfile, ifname, pcapfilter,
  // sslversion.
  const FieldTable& fields() const override;
};

}  // namespace ecapture::openssl
