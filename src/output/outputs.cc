// Output pipeline construction and teardown.
#include "output/outputs.h"

#include <fmt/format.h>

namespace ecapture {

Outputs::~Outputs() { close(); }

Result<std::unique_ptr<Outputs>> Outputs::create(const OutputConfig& cfg, const GlobalConfig& g,
                                                 std::shared_ptr<spdlog::logger> log) {
  ASSIGN_OR_RETURN(Format format, parse_format(cfg.format));
  std::unique_ptr<Outputs> o(new Outputs());
  o->log_ = log;
  o->router_ = std::make_unique<OutputRouter>(g.hex, g.tsize);
  RotationOptions rot;
  rot.max_bytes = uint64_t{cfg.rotate_mb} << 20;
  rot.interval = std::chrono::seconds(cfg.rotate_seconds);
  if (cfg.eventaddr.empty() && (rot.max_bytes || rot.interval.count())) {
    return make_error("--eventroratesize/--eventroratetime need a file --eventaddr");
  }
  if (!cfg.ecaptureq.empty()) {
    return make_error("--ecaptureq {}: the eCaptureQ server is not available yet", cfg.ecaptureq);
  }
  if (!cfg.eventaddr.empty()) {
    auto w = make_writer(cfg.eventaddr, rot, log);
    if (!w) return make_error("--eventaddr {}", w.error().to_string());
    o->router_->add(format, std::shared_ptr<Writer>(std::move(*w)));
  } else if (cfg.ecaptureq.empty()) {
    if (format == Format::kProtobuf) {
      return make_error("--format protobuf is binary: send it to a file or tcp:// with "
                        "--eventaddr, or use --ecaptureq");
    }
    o->router_->add(format, std::make_shared<StreamWriter>(stdout));
  }
  ProcessorOptions popt;
  popt.tsize = g.tsize;
  popt.parse = !cfg.raw;
  o->processor_ = std::make_unique<EventProcessor>(popt, o->router_.get());
  return o;
}

void Outputs::set_options(bool hex, uint64_t tsize) {
  router_->set_options(hex, tsize);
  processor_->set_tsize(tsize);
}

void Outputs::close() {
  if (closed_) return;
  closed_ = true;
  processor_->close();
  router_->close();
  ProcessorStats s = processor_->stats();
  log_->info("output summary: messages={} queue_dropped={} queue_dropped_bytes={} partial={}; {}",
             s.messages, s.dropped_events, s.dropped_bytes, s.flushed_idle, router_->summary());
}

Result<void> add_log_destinations(const GlobalConfig& /*g*/, spdlog::logger& /*log*/) {
  return {};
}

}  // namespace ecapture
