// The event pipeline as the command line configures it: EventProcessor → OutputRouter → writers
// (stdout, --eventaddr file/tcp/ws, --ecaptureq server), plus runtime-log routing (--logaddr).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "core/config.h"
#include "core/metrics_text.h"
#include "core/result.h"
#include "events/event_processor.h"
#include "output/router.h"

namespace ecapture {

class EcaptureqServer;

struct OutputConfig {
  // Where events go (repeatable); none = stdout. "-" or "stdout", a file, tcp://host:port,
  // ws://host:port/path, kafka://broker[,broker…]/topic.
  std::vector<std::string> eventaddr;
  std::vector<std::string> kafka_opts;  // --kafka-opt key=value, for kafka:// addresses
  std::string ecaptureq;         // ws://host:port/ — serve LogEntry streams
  std::string format = "text";   // for stdout / --eventaddr
  uint16_t rotate_mb = 0;        // --eventroratesize
  uint16_t rotate_seconds = 0;   // --eventroratetime
  bool raw = false;              // --no-parse: one raw message per call
  std::string host_id;           // --host-id: the host events name ("" = the hostname)
  uint64_t web_history = 10000;  // --web-history: rows the web view keeps (with --listen)
  std::string har;               // --har FILE: every HTTP exchange, written on exit
  bool har_given = false;        // --har was on the command line (so '' is refused)
};

class Outputs {
 public:
  ~Outputs();
  // Builds and starts everything; errors name the flag.
  // `tap` (the web view, --har) receives every finished message beside the writers.
  static Result<std::unique_ptr<Outputs>> create(const OutputConfig& cfg, const GlobalConfig& g,
                                                 std::shared_ptr<spdlog::logger> log,
                                                 MessageSink* tap = nullptr);
  EventSink* sink() { return processor_.get(); }
  // Hot reload of --hex / --tsize.
  void set_options(bool hex, uint64_t tsize);
  // Called once a module runs; without it close() stays silent (start-up errors stay one line).
  void mark_started() { started_ = true; }
  // Drains the processor, flushes and closes writers and servers; logs the output summary.
  void close();
  // The processor's and every writer's counters, for GET /status (data.output).
  nlohmann::json status_json() const;
  // The same as Prometheus families, for GET /metrics.
  void add_metrics(MetricsText& m) const;

 private:
  Outputs() = default;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<OutputRouter> router_;
  std::unique_ptr<MessageSink> tee_;  // router_ + the tap
  std::unique_ptr<EventProcessor> processor_;
  std::shared_ptr<EcaptureqServer> ecaptureq_;
  bool closed_ = false;
  bool started_ = false;  // a module ran: close() prints the summary
};

// Adds the --logaddr tcp:// / ws:// destination (JSON lines) and the eCaptureQ log stream to
// `log`. File paths are handled by make_logger.
Result<void> add_log_destinations(const GlobalConfig& g, spdlog::logger& log);

}  // namespace ecapture
