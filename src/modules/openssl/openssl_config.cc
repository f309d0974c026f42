// The tls module's settings.
#include "modules/openssl/openssl_config.h"

namespace ecapture::openssl {

const FieldTable& OpenSslConfig::fields() const {
  return field_table<OpenSslConfig>([](FieldTableBuilder<OpenSslConfig>& b) {
    b.file(&OpenSslConfig::libssl, "--libssl", {"opensslpath"},
           "libssl.so file or statically linked executable exporting SSL_* (default: "
           "every OpenSSL/BoringSSL any process maps, now and later; with --pid, that "
           "process's)");
    tls::add_capture_rows(b, {"capturemode", "keylogfile", "pcapfile", "ifname", "pcapfilter"},
                          OpenSslConfig{});
    b.text(&OpenSslConfig::ssl_version,
           {.flag = "--ssl_version",
            .json = {"sslversion"},
            .help = "struct layout to use for keys, e.g. \"openssl 3.0.19\" or \"boringssl\" "
                    "(default: from the version found in the library)"});
    add_perf_reorder_rows(b);
    // eCapture reports BoringSSL through isboringssl; here the library is recognised by itself.
    b.json_ignored({"isboringssl"});
    b.json_unused({"masterhookfuncs", "sslbpffile", "is_android", "androidver"});
  });
}

}  // namespace ecapture::openssl
