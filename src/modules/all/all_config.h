// Configuration of `ecapture all`: the capture settings its parts share; the per-library flags
// of the single modules are refused (each part finds its own targets).
#pragma once

#include <string>

#include "core/config.h"
#include "tls/capture_fields.h"

namespace ecapture::all {

struct AllConfig : ConfigOf<AllConfig>, tls::CaptureFields {
  AllConfig() : CaptureFields("ecapture_all_key.log", "save.pcapng") {}
  // Accepted only to be refused with a pointer to the single module.
  std::string libssl, elfpath, gnutls, nspr, ssl_version;

  // JSON names: capturemode, keylogfile, pcapfile, ifname, pcapfilter.
  const FieldTable& fields() const override;
};

}  // namespace ecapture::all
