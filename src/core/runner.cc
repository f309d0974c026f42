// The runner's event loop: start, wait, stop, error, reload.
#include "core/runner.h"

#include <sys/utsname.h>

#include "core/version.h"

namespace ecapture {
namespace {
std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? std::string(u.release) : std::string("unknown");
}
}  // namespace

Runner::Runner(const ModuleRegistry& registry, EventSink* sink,
               std::shared_ptr<spdlog::logger> log)
    : registry_(registry), sink_(sink), log_(std::move(log)) {}

Runner::~Runner() { close_module(); }

void Runner::push(Request r) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(r));
  }
  queue_cv_.notify_one();
}

Runner::Request Runner::pop() {
  std::unique_lock lock(queue_mu_);
  queue_cv_.wait(lock, [&] { return !queue_.empty(); });
  Request r = std::move(queue_.front());
  queue_.pop_front();
  return r;
}

void Runner::request_stop() { push(Request{RequestKind::kStop}); }

std::future<Result<void>> Runner::request_reload(std::string module,
                                                 std::unique_ptr<ModuleConfig> config) {
  Request r{RequestKind::kReload};
  r.module = std::move(module);
  r.config = std::move(config);
  auto fut = r.done.get_future();
  reloading_.store(true);
  push(std::move(r));
  return fut;
}

Result<void> Runner::start_module(const std::string& name, std::unique_ptr<ModuleConfig> config) {
  ASSIGN_OR_RETURN(ModulePtr module, registry_.create(name));
  std::unique_ptr<ModuleConfig> kept = config->clone();
  uint64_t generation;
  std::stop_source source;
  {
    std::lock_guard lock(module_mu_);
    generation = ++generation_;
  }
  ModuleContext ctx;
  ctx.stop = source.get_token();
  ctx.sink = sink_;
  ctx.log = log_;
  ctx.on_error = [this, generation](const Error& e) {
    Request r{RequestKind::kModuleError};
    r.generation = generation;
    r.error = e;
    push(std::move(r));
  };
  const GlobalConfig global = config->global;
  RETURN_IF_ERROR(module->init(std::move(ctx), std::move(config)));
  log_->info("ecapture {} ({}), kernel {}, BTF {}, module {}", kVersion, kGitDescribe,
             kernel_release(),
             global.btf_file.empty() ? "/sys/kernel/btf/vmlinux (CO-RE)"
                                     : global.btf_file + " (CO-RE, --btf-file)",
             module->name());
  RETURN_IF_ERROR(module->run());
  std::lock_guard lock(module_mu_);
  module_ = std::move(module);
  module_name_ = registry_.find(name)->name;
  config_ = std::move(kept);
  stop_source_ = std::move(source);
  started_at_ = std::chrono::steady_clock::now();
  return {};
}

void Runner::close_module() {
  ModulePtr module;
  {
    std::lock_guard lock(module_mu_);
    module = std::move(module_);
    stop_source_.request_stop();
  }
  if (module) module->close();  // outside the lock: closing joins the module's threads
}

Result<void> Runner::handle_reload(Request& r) {
  std::string old_name;
  std::unique_ptr<ModuleConfig> old_config;
  {
    std::lock_guard lock(module_mu_);
    old_name = module_name_;
    if (config_) old_config = config_->clone();
  }
  log_->info("reload: closing module {} and starting module {}", old_name, r.module);
  close_module();
  auto started = start_module(r.module, std::move(r.config));
  if (started) {
    std::lock_guard lock(module_mu_);
    ++reloads_;
    return {};
  }
  log_->error("reload: module {} did not start: {}; restoring module {}", r.module,
              started.error().to_string(), old_name);
  if (old_config) {
    if (auto restored = start_module(old_name, std::move(old_config)); !restored) {
      return make_error("module {} did not start ({}) and restoring module {} failed too: {}",
                        r.module, started.error().to_string(), old_name,
                        restored.error().to_string());
    }
  }
  return started;
}

Result<void> Runner::start(const std::string& module, std::unique_ptr<ModuleConfig> config) {
  return start_module(module, std::move(config));
}

int Runner::run(const std::string& module, std::unique_ptr<ModuleConfig> config) {
  if (auto r = start(module, std::move(config)); !r) {
    log_->error("{}", r.error().to_string());
    return 1;
  }
  return wait();
}

int Runner::wait() {
  for (;;) {
    Request req = pop();
    switch (req.kind) {
      case RequestKind::kStop:
        close_module();
        return 0;
      case RequestKind::kModuleError: {
        {
          std::lock_guard lock(module_mu_);
          if (req.generation != generation_) break;  // from a module already replaced
        }
        log_->error("module failed: {}", req.error.to_string());
        {
          std::lock_guard lock(module_mu_);
          error_ = req.error.to_string();
        }
        close_module();
        return 1;
      }
      case RequestKind::kReload: {
        auto result = handle_reload(req);
        bool running;
        {
          std::lock_guard lock(module_mu_);
          running = module_ != nullptr;
        }
        reloading_.store(false);
        req.done.set_value(result);
        if (!running) {
          log_->error("no module is running after the failed reload; exiting");
          return 1;
        }
        break;
      }
    }
  }
}

RunnerStatus Runner::status() const {
  std::lock_guard lock(module_mu_);
  RunnerStatus s;
  s.module = module_name_;
  s.reloads = reloads_;
  if (module_) {
    s.state = module_->state();
    const CounterValues c = module_->counter_values();
    s.events = c.events;
    s.bytes = c.bytes;
    s.lost = c.lost;
    s.decode_errors = c.decode_errors;
    s.map_update_failures = c.map_update_failures;
    s.targets = c.targets;
    s.target_report = module_->target_report();
    s.uptime_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
  } else {
    s.state = error_.empty() ? ModuleState::kClosed : ModuleState::kError;
  }
  s.error = error_;
  if (config_) s.config = config_->to_json();
  return s;
}

}  // namespace ecapture
