// The capture-mode settings of the TLS modules (tls, gotls, gnutls): -m, -k, -w, -i and the
// trailing pcap filter expression, as field-table rows with eCapture's JSON names per module.
#pragma once

#include <string>

#include "core/config.h"
#include "core/fields.h"
#include "core/result.h"

namespace ecapture::tls {

enum class CaptureMode { kText, kKeylog, kPcap };

// Parses -m/--model (case-insensitive): text | keylog | key | pcap | pcapng.
Result<CaptureMode> parse_capture_mode(const std::string& model);

// eCapture's JSON names for the capture fields (they differ between its modules).
struct CaptureFieldNames {
  const char* model;
  const char* keylogfile;
  const char* pcapfile;
  const char* ifname;
  const char* pcap_filter;
};

struct CaptureFields {
  std::string model = "text";  // -m/--model as given
  std::string keylogfile;
  std::string pcapfile;
  std::string ifname;
  std::string pcap_filter;  // trailing arguments joined with spaces

  CaptureFields(std::string keylog_default, std::string pcap_default)
      : keylogfile(std::move(keylog_default)), pcapfile(std::move(pcap_default)) {}
  // The mode parses, a filter expression comes with pcap mode only, and the file the mode writes
  // is named.
  Result<CaptureMode> validate_capture() const;
  // A bad mode value in an API body, named by its field.
  Result<void> check_capture_json(const CaptureFieldNames& names) const;
};

// The five rows and their checks, for a config deriving from CaptureFields.
template <typename Config>
void add_capture_rows(FieldTableBuilder<Config>& b, const CaptureFieldNames& names,
                      const Config& defaults) {
  b.text(&Config::model, {.flag = "-m,--model",
                          .json = {names.model},
                          .help = "capture mode: text (plaintext), keylog (alias key: "
                                  "SSLKEYLOGFILE lines) or pcap (alias pcapng: packets with the "
                                  "keys embedded)",
                          .default_text = "text"})
      .text(&Config::keylogfile, {.flag = "-k,--keylogfile",
                                  .json = {names.keylogfile},
                                  .help = "key log file, appended (keylog and pcap modes)",
                                  .default_text = defaults.keylogfile})
      .text(&Config::pcapfile, {.flag = "-w,--pcapfile",
                                .json = {names.pcapfile},
                                .help = "pcapng file, never overwritten (pcap mode)",
                                .default_text = defaults.pcapfile})
      .text(&Config::ifname,
            {.flag = "-i,--ifname",
             .json = {names.ifname},
             .help = "interface to capture packets on (pcap mode; default: wlan0 if up, else "
                     "the first interface that is up with an address)"})
      .text(&Config::pcap_filter,
            {.flag = "filter",
             .json = {names.pcap_filter},
             .help = "pcap filter expression (pcap mode), e.g. tcp port 443",
             .positional = true})
      .check([](const Config& c) -> Result<void> {
        RETURN_IF_ERROR(c.validate_capture());
        return {};
      })
      .check_json([names](const Config& c) { return c.check_capture_json(names); });
}

}  // namespace ecapture::tls
