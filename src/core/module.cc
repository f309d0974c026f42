// Lifecycle of a module: state checks and transitions around the module's hooks.
#include "core/module.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace ecapture {

std::string_view to_string(ModuleState s) {
  switch (s) {
    case ModuleState::kUninitialized: return "uninitialized";
    case ModuleState::kInitialized: return "initialized";
    case ModuleState::kRunning: return "running";
    case ModuleState::kStopping: return "stopping";
    case ModuleState::kClosed: return "closed";
    case ModuleState::kError: return "error";
  }
  return "unknown";
}

Result<BtfSettings> resolve_btf(const GlobalConfig& g) {
  BtfSettings b;
  if (!g.btf_file.empty()) {
    b.custom_path = g.btf_file;
    return b;
  }
  if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return make_error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): pass a BTF "
                      "file for it with --btf-file PATH (e.g. from btfhub)");
  }
  return b;
}

CounterValues& CounterValues::operator+=(const CounterValues& o) {
  events += o.events;
  bytes += o.bytes;
  lost += o.lost;
  decode_errors += o.decode_errors;
  map_update_failures += o.map_update_failures;
  targets += o.targets;
  return *this;
}

CounterValues values_of(const ModuleCounters& c) {
  return {c.events.load(),
          c.bytes.load(),
          c.lost.load(),
          c.decode_errors.load(),
          c.map_update_failures.load(),
          c.targets.load()};
}

Module::Module(std::string name) : name_(std::move(name)) {}

Module::~Module() {
  // Owners go through ModuleDeleter, which closes first; reaching here unclosed is a bug.
  if (state_.load() != ModuleState::kClosed && state_.load() != ModuleState::kUninitialized &&
      ctx_.log) {
    ctx_.log->error("module {} destroyed without close()", name_);
  }
}

Result<void> Module::init(ModuleContext ctx, std::unique_ptr<ModuleConfig> config) {
  std::lock_guard lock(lifecycle_mu_);
  if (state_.load() != ModuleState::kUninitialized) {
    return make_error("module {}: init called twice (state {})", name_, to_string(state_.load()));
  }
  if (!config) return make_error("module {}: init without a configuration", name_);
  if (!ctx.log) ctx.log = spdlog::default_logger();
  ctx_ = std::move(ctx);
  config_ = std::move(config);
  init_attempted_ = true;
  auto fail = [&](Error e) -> Result<void> {
    state_.store(ModuleState::kError);
    release_locked();
    return e;
  };
  if (auto r = config_->validate(); !r) return fail(std::move(r).error());
  if (config_->perf_reorder || config_->perf_reorder_lag_ms != 0) {
    ctx_.log->info("--perf-reorder: events already arrive in order (one ring buffer), nothing "
                   "to reorder");
  }
  auto btf = resolve_btf(config_->global);
  if (!btf) return fail(std::move(btf).error());
  btf_ = std::move(btf).value();
  if (auto r = on_init(); !r) return fail(std::move(r).error());
  state_.store(ModuleState::kInitialized);
  return {};
}

Result<void> Module::run() {
  std::lock_guard lock(lifecycle_mu_);
  if (state_.load() != ModuleState::kInitialized) {
    return make_error("module {}: run requires an initialized module (state {})", name_,
                      to_string(state_.load()));
  }
  auto fail = [&](Error e) -> Result<void> {
    state_.store(ModuleState::kError);
    release_locked();
    return e;
  };
  started_ = true;
  if (auto r = on_start(); !r) return fail(std::move(r).error());
  state_.store(ModuleState::kRunning);
  if (auto r = on_run(); !r) return fail(std::move(r).error());
  return {};
}

void Module::stop() {
  std::lock_guard lock(lifecycle_mu_);
  ModuleState expected = ModuleState::kRunning;
  if (!state_.compare_exchange_strong(expected, ModuleState::kStopping)) {
    return;  // not running: nothing to stop
  }
  stop_called_ = true;
  on_stop();
}

void Module::close() {
  std::lock_guard lock(lifecycle_mu_);
  ModuleState s = state_.load();
  if (s == ModuleState::kClosed) return;
  if (s == ModuleState::kRunning) state_.store(ModuleState::kStopping);
  release_locked();
  state_.store(ModuleState::kClosed);
}

void Module::release_locked() {
  if (released_ || !init_attempted_) return;
  released_ = true;
  if (started_ && !stop_called_) {
    stop_called_ = true;
    on_stop();
  }
  on_close();
  if (ctx_.sink) ctx_.sink->flush();
  if (!started_ || ctx_.part) return;
  const CounterValues c = counter_values();
  ctx_.log->info("summary: events={} bytes={} lost={} decode_errors={} map_update_failures={}",
                 c.events, c.bytes, c.lost, c.decode_errors, c.map_update_failures);
}

void Module::report_error(const Error& e) {
  ModuleState s = state_.load();
  while (s == ModuleState::kRunning || s == ModuleState::kInitialized) {
    if (state_.compare_exchange_weak(s, ModuleState::kError)) break;
  }
  if (ctx_.on_error) ctx_.on_error(e);
}

}  // namespace ecapture
