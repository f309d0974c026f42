// Flags shared by the TLS commands.
#include "cli/cli.h"

namespace ecapture::cli {

std::shared_ptr<std::vector<std::string>> add_tls_mode_flags(CLI::App* app,
                                                             openssl::CaptureFields& fields) {
  app->add_option("-m,--model", fields.model,
                  "capture mode: text (plaintext), keylog (alias key: SSLKEYLOGFILE lines) or "
                  "pcap (alias pcapng: packets with the keys embedded)")
      ->default_str("text");
  app->add_option("-k,--keylogfile", fields.keylogfile, "key log file, appended (keylog and pcap modes)")
      ->default_str(fields.keylogfile);
  app->add_option("-w,--pcapfile", fields.pcapfile, "pcapng file, never overwritten (pcap mode)")
      ->default_str(fields.pcapfile);
  app->add_option("-i,--ifname", fields.ifname,
                  "interface to capture packets on (pcap mode; default: wlan0 if up, else the "
                  "first interface that is up with an address)");
  auto filter = std::make_shared<std::vector<std::string>>();
  app->add_option("filter", *filter, "pcap filter expression (pcap mode), e.g. tcp port 443");
  return filter;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string joined;
  for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
  return joined;
}

}  // namespace ecapture::cli
