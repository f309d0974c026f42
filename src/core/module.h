// The module contract: a named capture type whose lifecycle the base class owns
// (non-virtual interface); concrete modules fill in the protected hooks.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "core/config.h"
#include "core/result.h"
#include "core/sink.h"

namespace ecapture {

enum class ModuleState : int {
  kUninitialized,
  kInitialized,
  kRunning,
  kStopping,
  kClosed,
  kError,
};

std::string_view to_string(ModuleState s);

// What the runner hands to a module instance. `stop` is fresh for every instance, so a reloaded
// module never starts with a cancelled token.
struct ModuleContext {
  std::stop_token stop;
  std::function<void(const Error&)> on_error;  // asynchronous failures, to the runner
  EventSink* sink = nullptr;
  std::shared_ptr<spdlog::logger> log;
  // A part of a composite module (`all`): its owner logs the "capture started" line and the
  // summary for all of its parts.
  bool part = false;
};

struct ModuleCounters {
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> lost{0};           // records the kernel could not deliver
  std::atomic<uint64_t> decode_errors{0};  // records user space could not decode
  std::atomic<uint64_t> map_update_failures{0};  // BPF map updates the kernel refused
  std::atomic<uint64_t> targets{0};        // distinct files probed
};

// The values of ModuleCounters at one moment.
struct CounterValues {
  uint64_t events = 0, bytes = 0, lost = 0, decode_errors = 0, map_update_failures = 0, targets = 0;
  CounterValues& operator+=(const CounterValues& o);
};

CounterValues values_of(const ModuleCounters& c);

// BTF source chosen at init: the running kernel's or a file given with --btf-file.
struct BtfSettings {
  bool core = true;
  std::string custom_path;  // empty: /sys/kernel/btf/vmlinux
};

class Module {
 public:
  explicit Module(std::string name);
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Stores the context and config, validates it, resolves BTF, then calls on_init().
  // A second init is refused. On failure the state is kError.
  Result<void> init(ModuleContext ctx, std::unique_ptr<ModuleConfig> config);
  // start (load + attach) then run (readers). On failure everything already acquired is released
  // before returning, and the state is kError.
  Result<void> run();
  // Marks kStopping first, then calls on_stop(). Harmless before run.
  void stop();
  // Idempotent; stops if needed, releases everything, logs the summary. State kClosed.
  void close();

  ModuleState state() const { return state_.load(); }
  const std::string& name() const { return name_; }
  const ModuleConfig* config() const { return config_.get(); }
  const ModuleCounters& counters() const { return counters_; }
  // What /status and the summary show: the module's counters (a composite adds its parts').
  virtual CounterValues counter_values() const { return values_of(counters_); }
  // What the module hooked and what it could not, for /status: a JSON array of objects (one per
  // target: "path", "reason" or "version", ...). Thread-safe; empty by default.
  virtual nlohmann::json target_report() const { return nlohmann::json::array(); }

 protected:
  virtual Result<void> on_init() = 0;
  virtual Result<void> on_start() = 0;
  virtual Result<void> on_run() = 0;
  virtual void on_stop() {}
  // Releases everything the module holds. May be called after a partial start.
  virtual void on_close() = 0;

  // For module threads: an unrecoverable failure while running. Moves to kError and tells the
  // runner, which then closes the module.
  void report_error(const Error& e);

  const ModuleContext& ctx() const { return ctx_; }
  spdlog::logger& log() const { return *ctx_.log; }
  const BtfSettings& btf() const { return btf_; }
  ModuleCounters& counters_mut() { return counters_; }
  template <typename T>
  const T& config_as() const {
    return static_cast<const T&>(*config_);
  }

 private:
  void release_locked();

  std::string name_;
  std::atomic<ModuleState> state_{ModuleState::kUninitialized};
  std::mutex lifecycle_mu_;
  bool released_ = false;
  bool started_ = false;
  bool stop_called_ = false;
  bool init_attempted_ = false;
  ModuleContext ctx_;
  std::unique_ptr<ModuleConfig> config_;
  BtfSettings btf_;
  ModuleCounters counters_;
};

// Owning pointer that closes the module before deleting it (close needs the derived hooks, which
// a base destructor can no longer call).
struct ModuleDeleter {
  void operator()(Module* m) const {
    if (m == nullptr) return;
    m->close();
    delete m;
  }
};
using ModulePtr = std::unique_ptr<Module, ModuleDeleter>;

// Resolves --btf/--btf-file into BtfSettings (pure file checks, no root needed).
Result<BtfSettings> resolve_btf(const GlobalConfig& g);

}  // namespace ecapture
