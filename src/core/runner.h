// Runner: creates the requested module, drives its lifecycle and waits for a stop request, a module
// error or a reload request (close, then init+run a new module with a fresh context).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "core/registry.h"

namespace ecapture {

struct RunnerStatus {
  std::string module;  // canonical name of the running module ("" before the first start)
  ModuleState state = ModuleState::kUninitialized;
  nlohmann::json config;
  uint64_t reloads = 0;
  double uptime_seconds = 0;
  uint64_t events = 0, bytes = 0, lost = 0;
  uint64_t decode_errors = 0, map_update_failures = 0, targets = 0;
  std::string error;  // why the module failed (state kError), else empty
  nlohmann::json target_report = nlohmann::json::array();  // Module::target_report()
};

class Runner {
 public:
  Runner(const ModuleRegistry& registry, EventSink* sink, std::shared_ptr<spdlog::logger> log);
  ~Runner();

  // Creates, initializes and runs the first module. On error nothing is left running.
  Result<void> start(const std::string& module, std::unique_ptr<ModuleConfig> config);
  // Blocks until stopped. Returns the process exit code: 0 after a stop request, non-zero when the
  // module failed while running or no module could be restored after a failed reload.
  int wait();
  // start() then wait(); a start failure is logged and gives exit code 1.
  int run(const std::string& module, std::unique_ptr<ModuleConfig> config);

  // Thread-safe; callable from a signal-handling thread.
  void request_stop();
  // Thread-safe. The future resolves once the new module runs (ok), or with the reason it could not
  // start — in which case the previous module and configuration have been restored.
  std::future<Result<void>> request_reload(std::string module,
                                           std::unique_ptr<ModuleConfig> config);
  bool reload_in_progress() const { return reloading_.load(); }
  RunnerStatus status() const;

 private:
  enum class RequestKind { kStop, kModuleError, kReload };
  struct Request {
    RequestKind kind;
    uint64_t generation = 0;
    Error error;
    std::string module;
    std::unique_ptr<ModuleConfig> config;
    std::promise<Result<void>> done;
  };

  void push(Request r);
  Request pop();
  Result<void> start_module(const std::string& name, std::unique_ptr<ModuleConfig> config);
  void close_module();
  Result<void> handle_reload(Request& r);

  const ModuleRegistry& registry_;
  EventSink* sink_;
  std::shared_ptr<spdlog::logger> log_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Request> queue_;

  mutable std::mutex module_mu_;  // guards the fields below for status()
  ModulePtr module_;
  std::string module_name_;
  std::string error_;  // the failure that ended the run, for /status
  std::unique_ptr<ModuleConfig> config_;  // what the running module was started with
  std::stop_source stop_source_;
  uint64_t generation_ = 0;
  uint64_t reloads_ = 0;
  std::chrono::steady_clock::time_point started_at_{};
  std::atomic<bool> reloading_{false};
};

}  // namespace ecapture
