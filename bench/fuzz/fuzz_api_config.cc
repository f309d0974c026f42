// libFuzzer target: HTTP API JSON configs, through each module's config_from_json in the
// registry (the first byte picks the module). Any JSON must give a config or an error naming a
// field; a config that came back must also pass the module's own validation without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& modules = ecapture::builtin_registry().modules();
  const auto& info = modules[data[0] % modules.size()];
  const auto j = nlohmann::json::parse(data + 1, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  ecapture::GlobalConfig defaults;
  auto config = info.config_from_json(j, defaults);
  if (!config) {
    if (config.error().message.empty()) std::abort();
    return 0;
  }
  (void)(*config)->validate();
  (void)(*config)->clone()->to_json().dump();
  return 0;
}
