// Request handling of the configuration API: endpoint → module, JSON → config, reload, status.
#include "api/api_handler.h"

#include <array>
#include <chrono>
#include <cmath>

namespace ecapture::api {
namespace {

nlohmann::json status_json(const RunnerStatus& s, bool reloading) {
  return nlohmann::json{
      {"module", s.module},
      {"state", std::string(to_string(s.state))},
      {"config", s.config.is_null() ? nlohmann::json::object() : s.config},
      {"uptime_seconds", std::round(s.uptime_seconds * 1000) / 1000},
      {"reloads", s.reloads},
      {"reload_in_progress", reloading},
      {"counters",
       {{"events", s.events},
        {"bytes", s.bytes},
        {"lost", s.lost},
        {"decode_errors", s.decode_errors},
        {"map_update_failures", s.map_update_failures},
        {"targets", s.targets}}},
      {"target_report", s.target_report},
      {"error", s.error},
  };
}

}  // namespace

ApiResponse make_response(int http_status, RespCode code, std::string_view module_type,
                          std::string msg, nlohmann::json data) {
  return ApiResponse{http_status, nlohmann::json{{"code", static_cast<int>(code)},
                                                 {"module_type", std::string(module_type)},
                                                 {"msg", std::move(msg)},
                                                 {"data", std::move(data)}}};
}

std::string endpoint_list(const ModuleRegistry& registry) {
  std::string out;
  for (const auto& m : registry.modules()) {
    for (const auto& p : m.api_paths) out += (out.empty() ? "" : ", ") + p;
  }
  return out;
}

std::string module_type_of(const ModuleRegistry& registry, std::string_view module) {
  const ModuleInfo* m = registry.find(module);
  if (m == nullptr || m->module_type.empty()) return std::string(module);
  return m->module_type;
}

ApiHandler::ApiHandler(Runner& runner, const ModuleRegistry& registry, GlobalConfig defaults,
                       std::shared_ptr<spdlog::logger> log)
    : runner_(runner), registry_(registry), defaults_(std::move(defaults)), log_(std::move(log)) {}

ApiResponse ApiHandler::not_found(std::string_view method, std::string_view path) const {
  return make_response(404, RespCode::kNotFound, "",
                       fmt::format("no endpoint {} {}: POST one of {} with a JSON configuration, "
                                   "or GET /status, /healthz, /metrics", method, path,
                                   endpoint_list(registry_)));
}

ApiResponse ApiHandler::post_config(std::string_view path, std::string_view body) {
  const ModuleInfo* info = registry_.find_by_path(path);
  if (info == nullptr) return not_found("POST", path);
  const std::string type = module_type_of(registry_, info->name);
  if (shutting_down_.load()) {
    return make_response(503, RespCode::kBusy, type, "ecapture is shutting down");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    return make_response(400, RespCode::kDecodeFailed, type,
                         fmt::format("invalid JSON body: {}", e.what()));
  }
  if (!j.is_object()) {
    return make_response(400, RespCode::kDecodeFailed, type,
                         fmt::format("the body must be a JSON object with module {}'s "
                                     "configuration, got {}", info->name, j.type_name()));
  }
  auto config = info->config_from_json(j, defaults_);
  if (!config) {
    return make_response(400, RespCode::kCheckFailed, type, config.error().to_string());
  }
  if (auto valid = (*config)->validate(); !valid) {
    return make_response(400, RespCode::kCheckFailed, type,
                         fmt::format("invalid configuration for module {}: {}", info->name,
                                     valid.error().to_string()));
  }

  std::unique_lock lock(reload_mu_, std::try_to_lock);
  if (!lock.owns_lock() || runner_.reload_in_progress()) {
    return make_response(503, RespCode::kBusy, type,
                         "another reload is in progress: retry when it has finished");
  }
  const std::string previous = runner_.status().module;
  std::unique_ptr<ModuleConfig> applied = (*config)->clone();
  log_->info("api: POST {}: reloading module {} → {}", path, previous, info->name);
  auto done = runner_.request_reload(info->name, std::move(config).value());
  while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (shutting_down_.load()) {
      return make_response(503, RespCode::kBusy, type,
                           "ecapture is shutting down; the reload did not complete");
    }
  }
  Result<void> result = done.get();
  const RunnerStatus now = runner_.status();
  if (result) {
    if (on_applied_) on_applied_(*applied);
    return make_response(200, RespCode::kOk, type,
                         fmt::format("module {} is running with the new configuration",
                                     info->name),
                         status_json(now, false));
  }
  const std::string why = result.error().to_string();
  if (now.state == ModuleState::kRunning) {
    log_->warn("api: POST {}: {}", path, why);
    return make_response(400, RespCode::kCheckFailed, type,
                         fmt::format("module {} did not start: {}; the previous configuration "
                                     "(module {}) is running again", info->name, why,
                                     now.module),
                         status_json(now, false));
  }
  return make_response(500, RespCode::kInternalServer, type,
                       fmt::format("module {} did not start and the previous module could not be "
                                   "restored: {}; ecapture is exiting", info->name, why));
}

ApiResponse ApiHandler::status() const {
  const RunnerStatus s = runner_.status();
  nlohmann::json data = status_json(s, runner_.reload_in_progress());
  if (output_counters_) data["output"] = output_counters_();
  return make_response(200, RespCode::kOk, module_type_of(registry_, s.module), "ok", std::move(data));
}

std::string ApiHandler::metrics() const {
  const RunnerStatus s = runner_.status();
  MetricsText m;
  // The module's counters restart with each (re)loaded module instance; Prometheus reads a
  // decrease as a counter reset.
  MetricsText::Labels mod = {{"module", s.module}};
  m.counter("ecapture_events_total", "Events the running module decoded.", s.events, mod);
  m.counter("ecapture_event_bytes_total", "Payload bytes of those events.", s.bytes, mod);
  m.counter("ecapture_lost_records_total",
            "Records the kernel could not hand over (ring buffer full).", s.lost, mod);
  m.counter("ecapture_decode_errors_total", "Records user space could not decode.",
            s.decode_errors, mod);
  m.counter("ecapture_map_update_failures_total", "BPF map updates the kernel refused.",
            s.map_update_failures, mod);
  m.gauge("ecapture_targets_hooked", "Distinct files the running module has probes on.",
          s.targets, mod);
  constexpr ModuleState kStates[] = {ModuleState::kUninitialized, ModuleState::kInitialized,
                                     ModuleState::kRunning,       ModuleState::kStopping,
                                     ModuleState::kClosed,        ModuleState::kError};
  for (ModuleState st : kStates) {
    m.gauge("ecapture_module_state", "1 for the module's current lifecycle state, else 0.",
            uint64_t{st == s.state},
            {{"module", s.module}, {"state", std::string(to_string(st))}});
  }
  m.counter("ecapture_reloads_total", "Successful hot reloads through the API.", s.reloads);
  m.gauge("ecapture_reload_in_progress", "1 while a reload runs.",
          uint64_t{runner_.reload_in_progress()});
  m.gauge("ecapture_module_uptime_seconds", "Seconds since the running module started.",
          s.uptime_seconds);
  for (const auto& source : metrics_sources_) source(m);
  add_process_metrics(m);
  return m.str();
}

ApiResponse ApiHandler::healthz() const {
  const RunnerStatus s = runner_.status();
  const bool reloading = runner_.reload_in_progress();
  nlohmann::json data{{"module", s.module}, {"state", std::string(to_string(s.state))},
                      {"reload_in_progress", reloading}};
  if (s.state == ModuleState::kRunning || reloading) {
    return make_response(200, RespCode::kOk, module_type_of(registry_, s.module), "ok", std::move(data));
  }
  return make_response(503, RespCode::kInternalServer, module_type_of(registry_, s.module),
                       fmt::format("no module is running (module '{}' is {})", s.module,
                                   to_string(s.state)),
                       std::move(data));
}

}  // namespace ecapture::api
