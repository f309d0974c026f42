// The settings of `ecapture all`.
#include "modules/all/all_config.h"

namespace ecapture::all {
namespace {

struct Refused {
  std::string AllConfig::*member;
  const char* flag;
  const char* json;
  const char* single;  // the command that takes it
};

constexpr Refused kRefused[] = {
    {&AllConfig::libssl, "--libssl", "opensslpath", "ecapture tls --libssl PATH"},
    {&AllConfig::elfpath, "-e,--elfpath", "elf_path", "ecapture gotls -e PATH"},
    {&AllConfig::gnutls, "--gnutls", "gnutlspath", "ecapture gnutls --gnutls PATH"},
    {&AllConfig::nspr, "--nspr", "nspr_path", "ecapture nss --nspr PATH"},
    {&AllConfig::ssl_version, "--ssl_version", "sslversion",
     "ecapture tls|gnutls --ssl_version VERSION"},
};

// The flag's long name ("-e,--elfpath" → "--elfpath").
std::string long_name(const char* flag) {
  std::string f(flag);
  const auto comma = f.find(',');
  return comma == std::string::npos ? f : f.substr(comma + 1);
}

}  // namespace

const FieldTable& AllConfig::fields() const {
  return field_table<AllConfig>([](FieldTableBuilder<AllConfig>& b) {
    tls::add_capture_rows(b, {"capturemode", "keylogfile", "pcapfile", "ifname", "pcapfilter"},
                          AllConfig{});
    for (const Refused& r : kRefused) {
      b.text(r.member,
             {.flag = r.flag,
              .json = {r.json},
              .help = fmt::format("not for `all`, which hooks every library it finds (use {})",
                                  r.single)});
    }
    b.check([](const AllConfig& c) -> Result<void> {
      for (const Refused& r : kRefused) {
        if (!(c.*r.member).empty()) {
          return make_error(
              "{}: `ecapture all` hooks every TLS library it finds and takes no "
              "path or version for one; to capture one target use {}",
              long_name(r.flag), r.single);
        }
      }
      return {};
    });
    b.check_json([](const AllConfig& c) -> Result<void> {
      for (const Refused& r : kRefused) {
        if (!(c.*r.member).empty()) {
          return make_error(
              "field '{}': the all module hooks every TLS library it finds and "
              "takes no path or version for one; POST to that library's own "
              "endpoint instead",
              r.json);
        }
      }
      return {};
    });
  });
}

}  // namespace ecapture::all
