// `ecapture all`: creating, configuring and driving the parts; their counters and reports joined.
#include "modules/all/all_module.h"

#include <fmt/ranges.h>

#include "tls/tls_module.h"

namespace ecapture::all {

std::vector<std::string> default_parts() { return {"tls", "gotls", "gnutls", "nss"}; }

AllModule::AllModule(const ModuleRegistry& registry, std::vector<std::string> parts)
    : Module("all"), registry_(registry) {
  for (auto& name : parts) parts_.push_back(Part{std::move(name), nullptr, ""});
}

Result<std::unique_ptr<ModuleConfig>> AllModule::part_config(const ModuleInfo& info) const {
  const auto& mine = config_as<AllConfig>();
  std::unique_ptr<ModuleConfig> cfg = info.make_config();
  cfg->global = mine.global;
  auto* capture = dynamic_cast<tls::CaptureFields*>(cfg.get());
  if (capture != nullptr) {
    *capture = static_cast<const tls::CaptureFields&>(mine);
  } else if (mode_ != tls::CaptureMode::kText) {
    return make_error("it captures no keys, so it has no -m {} (text mode only)", mine.model);
  }
  return cfg;
}

void AllModule::skip(Part& part, std::string reason) {
  log().warn("all: {} not running: {}", part.name, reason);
  part.module.reset();
  part.reason = std::move(reason);
}

Result<void> AllModule::init_part(Part& part) {
  const ModuleInfo* info = registry_.find(part.name);
  if (info == nullptr) return make_error("no such module in this build");
  ASSIGN_OR_RETURN(auto cfg, part_config(*info));
  ASSIGN_OR_RETURN(part.module, registry_.create(part.name));
  if (keys_) {
    auto* tls_part = dynamic_cast<tls::TlsModule*>(part.module.get());
    if (tls_part == nullptr) return make_error("it cannot write to a shared key output");
    tls_part->share_keys(keys_);
  }
  ModuleContext ctx;
  ctx.stop = this->ctx().stop;
  ctx.sink = this->ctx().sink;
  ctx.log = this->ctx().log;
  ctx.part = true;
  // A part failing while running ends the capture, as a single module's failure would.
  ctx.on_error = [this, name = part.name](const Error& e) {
    report_error(Error{fmt::format("{}: {}", name, e.message), e.err});
  };
  return part.module->init(std::move(ctx), std::move(cfg));
}

std::string AllModule::reasons() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (!p.module) out.push_back(fmt::format("{}: {}", p.name, p.reason));
  }
  return fmt::format("{}", fmt::join(out, "; "));
}

Result<void> AllModule::on_init() {
  const auto& cfg = config_as<AllConfig>();
  ASSIGN_OR_RETURN(mode_, tls::parse_capture_mode(cfg.model));
  // One key log (and pcapng) for every part, checked before any part touches a file.
  if (mode_ != tls::CaptureMode::kText) {
    ASSIGN_OR_RETURN(keys_, tls::TlsModule::open_key_output(cfg, mode_, cfg.global));
  }
  bool any = false;
  for (Part& part : parts_) {
    if (auto r = init_part(part); !r) {
      skip(part, r.error().to_string());
      continue;
    }
    any = true;
  }
  if (!any) return make_error("all: no TLS module found anything to hook ({})", reasons());
  return {};
}

Result<void> AllModule::on_start() {
  if (keys_) {
    RETURN_IF_ERROR(keys_->start(log()));
    keys_started_ = true;
  }
  bool any = false;
  for (Part& part : parts_) {
    if (!part.module) continue;
    if (auto r = part.module->run(); !r) {
      skip(part, r.error().to_string());
      continue;
    }
    any = true;
  }
  if (!any) return make_error("all: no TLS module could start ({})", reasons());
  return {};
}

Result<void> AllModule::on_run() {
  const auto& g = config()->global;
  std::vector<std::string> sections = {fmt::format("{}", fmt::join(running_parts(), ", "))};
  if (g.pid) sections.push_back(fmt::format("pid {}", g.pid));
  if (g.uid) sections.push_back(fmt::format("uid {}", g.uid));
  if (keys_) sections.push_back("key log " + keys_->keylog_path());
  std::vector<std::string> idle;
  for (const Part& p : parts_) {
    if (!p.module) idle.push_back(p.name);
  }
  if (!idle.empty()) sections.push_back(fmt::format("not running: {}", fmt::join(idle, ", ")));
  log().info("all: capture started ({})", fmt::join(sections, "; "));
  return {};
}

void AllModule::on_stop() {
  for (Part& part : parts_) {
    if (!part.module) continue;
    // A part that failed is no longer running; close() still drains it.
    if (part.module->state() == ModuleState::kRunning) {
      part.module->stop();
    } else {
      part.module->close();
    }
  }
  if (keys_ && keys_started_) {
    keys_->stop();  // after every part drained: the last secret precedes its packets
    counters_mut().lost.fetch_add(keys_->lost());
    keys_started_ = false;
  }
}

void AllModule::on_close() {
  // The parts stay (closed) for counter_values(), which the summary reads after this.
  for (Part& part : parts_) {
    if (part.module) part.module->close();
  }
  keys_.reset();  // removes a key log that a capture which never started created
}

CounterValues AllModule::counter_values() const {
  CounterValues sum = values_of(counters());
  for (const Part& p : parts_) {
    if (p.module) sum += p.module->counter_values();
  }
  return sum;
}

nlohmann::json AllModule::target_report() const {
  nlohmann::json out = nlohmann::json::array();
  for (const Part& p : parts_) {
    if (!p.module) {
      out.push_back({{"module", p.name}, {"reason", p.reason}});
      continue;
    }
    for (nlohmann::json entry : p.module->target_report()) {
      entry["module"] = p.name;
      out.push_back(std::move(entry));
    }
  }
  return out;
}

std::vector<std::string> AllModule::running_parts() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) {
    if (p.module) out.push_back(p.name);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> AllModule::skipped_parts() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Part& p : parts_) {
    if (!p.module) out.emplace_back(p.name, p.reason);
  }
  return out;
}

ModuleInfo module_entry() {
  return make_entry<AllConfig>(
      "all", {},
      "capture TLS from every library at once: the tls, gotls, gnutls and nss modules together",
      {"/all"}, "all",
      [] { return ModulePtr(new AllModule(builtin_registry(), default_parts())); });
}

}  // namespace ecapture::all
