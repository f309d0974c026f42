// The HTTP configuration API's request handling, independent of the HTTP library: eCapture's POST
// endpoints (JSON config → validate → runner reload), GET /status, /healthz and /metrics.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "core/config.h"
#include "core/metrics_text.h"
#include "core/registry.h"
#include "core/runner.h"

namespace ecapture::api {

// eCapture's response codes (cli/http): the body is {"code","module_type","msg","data"}.
enum class RespCode : int {
  kOk = 0,
  kInvalidRequest = 1,
  kInternalServer = 2,
  kNotFound = 3,
  kDecodeFailed = 4,
  kCheckFailed = 5,
  kBusy = 6,
};

struct ApiResponse {
  int http_status = 200;
  nlohmann::json body;
};

ApiResponse make_response(int http_status, RespCode code, std::string_view module_type,
                          std::string msg, nlohmann::json data = nullptr);

// eCapture's module_type of a registry module ("tls" → "openssl"); the name when unknown.
std::string module_type_of(const ModuleRegistry& registry, std::string_view module);
// Every POST path of the registry's modules, for messages.
std::string endpoint_list(const ModuleRegistry& registry);

class ApiHandler {
 public:
  // `defaults`: the command line's global flags, for fields a POST body leaves out.
  ApiHandler(Runner& runner, const ModuleRegistry& registry, GlobalConfig defaults,
             std::shared_ptr<spdlog::logger> log);

  // Called after a reload succeeded, with the configuration now in effect (e.g. to apply is_hex
  // and truncate_size to the output, debug to the log level).
  void set_on_applied(std::function<void(const ModuleConfig&)> f) { on_applied_ = std::move(f); }
  // Counters of the output pipeline (messages written, messages dropped, ...) for GET /status,
  // under data.output. Called from server threads.
  void set_output_counters(std::function<nlohmann::json()> f) { output_counters_ = std::move(f); }
  // Adds families to GET /metrics (the output pipeline, and any counters a module or the BPF
  // layer keeps, e.g. decode errors or map update failures). Called from server threads, in the
  // order added; set up before serve().
  void add_metrics_source(std::function<void(MetricsText&)> f) {
    metrics_sources_.push_back(std::move(f));
  }

  // POST <path> with a JSON body. Validates before anything changes; one reload at a time (a
  // request during a reload gets 503); answers once the new module runs or the old is restored.
  ApiResponse post_config(std::string_view path, std::string_view body);
  ApiResponse status() const;
  ApiResponse healthz() const;
  // GET /metrics: Prometheus text format.
  std::string metrics() const;
  ApiResponse not_found(std::string_view method, std::string_view path) const;

  // From now on requests get 503 and a POST waiting for its reload returns (the runner has
  // stopped and will not answer).
  void shut_down() { shutting_down_.store(true); }

 private:
  Runner& runner_;
  const ModuleRegistry& registry_;
  const GlobalConfig defaults_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<void(const ModuleConfig&)> on_applied_;
  std::function<nlohmann::json()> output_counters_;
  std::vector<std::function<void(MetricsText&)>> metrics_sources_;
  std::mutex reload_mu_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace ecapture::api
