// `ecapture all`: the TLS modules (tls, gotls, gnutls, nss) as parts of one module, with one
// output stream, one key log or pcapng file, one summary and one target report. Each part keeps
// its own lifecycle; a part that cannot run is a warning, no part running is an error.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/registry.h"
#include "modules/all/all_config.h"
#include "tls/capture_fields.h"
#include "tls/key_output.h"

namespace ecapture::all {

// The modules `ecapture all` runs, by registry name, in start order.
std::vector<std::string> default_parts();

// The registry entry of `all`.
ModuleInfo module_entry();

class AllModule final : public Module {
 public:
  // The parts are created from `registry` (which must outlive the module) by name.
  AllModule(const ModuleRegistry& registry, std::vector<std::string> parts);

  CounterValues counter_values() const override;
  // The parts' reports, each entry with "module": the part's name; a part that does not run is
  // one entry with its "reason".
  nlohmann::json target_report() const override;
  // The parts running (after run) and the reason of each part that is not.
  std::vector<std::string> running_parts() const;
  std::vector<std::pair<std::string, std::string>> skipped_parts() const;

 protected:
  Result<void> on_init() override;
  Result<void> on_start() override;
  Result<void> on_run() override;
  void on_stop() override;
  void on_close() override;

 private:
  struct Part {
    std::string name;
    ModulePtr module;    // null when skipped
    std::string reason;  // why it is not running
  };

  // The part's configuration: its defaults with the global flags and capture settings of `all`.
  Result<std::unique_ptr<ModuleConfig>> part_config(const ModuleInfo& info) const;
  Result<void> init_part(Part& part);
  void skip(Part& part, std::string reason);
  // "tls: …; gotls: …" of every skipped part.
  std::string reasons() const;

  const ModuleRegistry& registry_;
  tls::CaptureMode mode_ = tls::CaptureMode::kText;
  std::vector<Part> parts_;               // fixed from init on: read by /status while running
  std::shared_ptr<tls::KeyOutput> keys_;  // keylog and pcap modes
  bool keys_started_ = false;
};

}  // namespace ecapture::all
