// The gnutls and nss modules' settings.
#include "modules/tlslib/tlslib_config.h"

namespace ecapture::tlslib {

const FieldTable& GnutlsConfig::fields() const {
  return field_table<GnutlsConfig>([](FieldTableBuilder<GnutlsConfig>& b) {
    b.file(&GnutlsConfig::gnutls, "--gnutls", {"gnutlspath"},
           "libgnutls.so file (default: every libgnutls any process maps, now and later; "
           "with --pid, that process's)");
    tls::add_capture_rows(b, {"capturemode", "keylogfile", "pcapfile", "ifname", "pcapfilter"},
                          GnutlsConfig{});
    b.text(&GnutlsConfig::ssl_version,
           {.flag = "--ssl_version",
            .json = {"sslversion"},
            .help = "GnuTLS version whose session layout to use (3.6.4-3.8.13), e.g. \"3.7.9\" "
                    "(keys only; default: read from the library)"});
  });
}

const FieldTable& NssConfig::fields() const {
  return field_table<NssConfig>([](FieldTableBuilder<NssConfig>& b) {
    b.file(&NssConfig::nspr, "--nspr", {"nspr_path"},
           "libnspr4.so file (default: every libnspr4 any process maps, now and later; "
           "with --pid, that process's)");
  });
}

}  // namespace ecapture::tlslib
