// Output pipeline construction and teardown.
#include "output/outputs.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>

#include "output/ecaptureq_server.h"
#include "output/kafka_writer.h"
#include "output/text_encoder.h"
#include "output/tee_sink.h"

namespace ecapture {
namespace {

// Runtime log lines to a callback (the eCaptureQ stream, a tcp:// log destination).
class CallbackLogSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  using Fn = std::function<void(const spdlog::details::log_msg&, std::string_view)>;
  explicit CallbackLogSink(Fn fn) : fn_(std::move(fn)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    std::string_view line(buf.data(), buf.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    fn_(msg, line);
  }
  void flush_() override {}

 private:
  Fn fn_;
};

}  // namespace

Outputs::~Outputs() { close(); }

Result<std::unique_ptr<Outputs>> Outputs::create(const OutputConfig& cfg, const GlobalConfig& g,
                                                 std::shared_ptr<spdlog::logger> log,
                                                 MessageSink* tap) {
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
    ASSIGN_OR_RETURN(o->ecaptureq_, EcaptureqServer::start(cfg.ecaptureq));
    o->router_->add(Format::kProtobuf, o->ecaptureq_);
    std::weak_ptr<EcaptureqServer> weak = o->ecaptureq_;
    auto sink = std::make_shared<CallbackLogSink>(
        [weak](const spdlog::details::log_msg&, std::string_view line) {
          if (auto s = weak.lock()) s->log_line(line);
        });
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
    log->sinks().push_back(sink);
    log->info("eCaptureQ server listening on {}", cfg.ecaptureq);
  }
  bool has_kafka = false;
  for (const auto& addr : cfg.eventaddr) {
    if (addr == "-" || addr == "stdout") {
      if (format == Format::kProtobuf) {
        return make_error("--format protobuf is binary: not for stdout");
      }
      o->router_->add(format, std::make_shared<StreamWriter>(stdout));
      continue;
    }
    if (is_kafka_address(addr)) {
      if (rot.max_bytes || rot.interval.count()) {
        return make_error("--eventroratesize/--eventroratetime apply to a file --eventaddr, "
                          "not {}", addr);
      }
      auto k = KafkaWriter::create(addr, cfg.kafka_opts, log);
      if (!k) return make_error("--eventaddr {}", k.error().to_string());
      o->router_->add(format, std::shared_ptr<Writer>(std::move(*k)));
      has_kafka = true;
      continue;
    }
    auto w = make_writer(addr, rot, log);
    if (!w) return make_error("--eventaddr {}", w.error().to_string());
    o->router_->add(format, std::shared_ptr<Writer>(std::move(*w)));
  }
  if (!cfg.kafka_opts.empty() && !has_kafka) {
    return make_error("--kafka-opt {}: needs a kafka:// --eventaddr", cfg.kafka_opts.front());
  }
  if (cfg.eventaddr.empty() && cfg.ecaptureq.empty()) {
    if (format == Format::kProtobuf) {
      return make_error("--format protobuf is binary: send it to a file or tcp:// with "
                        "--eventaddr, or use --ecaptureq");
    }
    o->router_->add(format, std::make_shared<StreamWriter>(stdout));
  }
  ProcessorOptions popt;
  popt.tsize = g.tsize;
  popt.parse = !cfg.raw;
  MessageSink* out = o->router_.get();
  if (tap != nullptr) {
    o->tee_ = std::make_unique<TeeSink>(o->router_.get(), tap);
    out = o->tee_.get();
  }
  o->processor_ = std::make_unique<EventProcessor>(popt, out);
  return o;
}

void Outputs::set_options(bool hex, uint64_t tsize) {
  router_->set_options(hex, tsize);
  processor_->set_tsize(tsize);
}

void Outputs::close() {
  if (closed_) return;
  closed_ = true;
  // create() may have failed half-way (a bad --eventaddr): close what exists.
  if (processor_) processor_->close();
  if (router_) router_->close();  // also closes the eCaptureQ server
  if (!started_ || !processor_) return;  // nothing ran: the one error line stays alone
  ProcessorStats s = processor_->stats();
  log_->info("output summary: messages={} queue_dropped={} queue_dropped_bytes={} partial={}; {}",
             s.messages, s.dropped_events, s.dropped_bytes, s.flushed_idle, router_->summary());
}

nlohmann::json Outputs::status_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (processor_) {
    const ProcessorStats st = processor_->stats();
    j = {{"messages", st.messages},
         {"dropped_events", st.dropped_events},
         {"dropped_bytes", st.dropped_bytes}};
  }
  nlohmann::json sinks = nlohmann::json::array();
  if (router_) {
    for (const auto& [format, w] : router_->writers()) {
      const WriterStats s = w->stats();
      nlohmann::json one = {{"name", w->name()},       {"format", format_name(format)},
                            {"messages", s.messages},  {"bytes", s.bytes},
                            {"dropped", s.dropped},    {"dropped_bytes", s.dropped_bytes}};
      if (const auto* k = dynamic_cast<const KafkaWriter*>(w.get())) {
        const KafkaStats ks = k->kafka_stats();
        one["queue_full"] = ks.queue_full;
        one["delivery_failed"] = ks.delivery_failed;
        one["queued"] = ks.queued;
      }
      sinks.push_back(std::move(one));
    }
  }
  j["sinks"] = std::move(sinks);
  return j;
}

void Outputs::add_metrics(MetricsText& m) const {
  if (processor_) {
    const ProcessorStats st = processor_->stats();
    m.counter("ecapture_output_messages_total", "Messages the event processor produced.",
              st.messages);
    m.counter("ecapture_output_dropped_events_total",
              "Events dropped before processing (processor queue full).", st.dropped_events);
    m.counter("ecapture_output_dropped_bytes_total", "Payload bytes of those dropped events.",
              st.dropped_bytes);
  }
  if (!router_) return;
  for (const auto& [format, w] : router_->writers()) {
    const WriterStats s = w->stats();
    MetricsText::Labels l = {{"sink", w->name()}, {"format", format_name(format)}};
    m.counter("ecapture_sink_messages_total",
              "Messages a sink delivered (written, sent, or acknowledged by Kafka).", s.messages,
              l);
    m.counter("ecapture_sink_bytes_total", "Bytes of those messages.", s.bytes, l);
    m.counter("ecapture_sink_dropped_total",
              "Messages a sink dropped (queue full, consumer or broker gone).", s.dropped, l);
    m.counter("ecapture_sink_dropped_bytes_total", "Bytes of those dropped messages.",
              s.dropped_bytes, l);
    m.counter("ecapture_sink_connects_total",
              "Successful (re)connections of a tcp:// or ws:// sink (0 for the others).",
              s.connects, l);
    if (const auto* k = dynamic_cast<const KafkaWriter*>(w.get())) {
      const KafkaStats ks = k->kafka_stats();
      m.counter("ecapture_kafka_queue_full_total",
                "Messages refused because the producer queue was full.", ks.queue_full, l);
      m.counter("ecapture_kafka_delivery_failed_total",
                "Messages librdkafka gave up on (timeout, purged at exit, broker error).",
                ks.delivery_failed, l);
      m.gauge("ecapture_kafka_queued_messages", "Messages produced and not yet acknowledged.",
              ks.queued, l);
    }
  }
}

Result<void> add_log_destinations(const GlobalConfig& g, spdlog::logger& log) {
  if (g.logaddr.find("://") == std::string::npos) return {};  // a file: make_logger has it
  constexpr size_t kLogQueueBytes = 4u << 20;
  std::shared_ptr<Writer> writer;
  if (g.logaddr.rfind("tcp://", 0) == 0) {
    auto w = TcpWriter::create(g.logaddr, kLogQueueBytes);
    if (!w) return make_error("-l/--logaddr {}", w.error().to_string());
    writer = std::move(*w);
  } else if (g.logaddr.rfind("ws://", 0) == 0 || g.logaddr.rfind("wss://", 0) == 0) {
    auto w = make_ws_client_writer(g.logaddr, kLogQueueBytes);  // one message per log line
    if (!w) return make_error("-l/--logaddr {}", w.error().to_string());
    writer = std::move(*w);
  } else {
    return make_error("-l/--logaddr {}: use a file path, tcp://host:port or ws://host:port/path",
                      g.logaddr);
  }
  // eCapture sends its logs to such destinations as JSON lines.
  auto sink = std::make_shared<CallbackLogSink>(
      [writer](const spdlog::details::log_msg& msg, std::string_view) {
        nlohmann::json j;
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      msg.time.time_since_epoch()).count();
        j["time"] = format_timestamp(static_cast<uint64_t>(ns));
        j["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                                 spdlog::level::to_string_view(msg.level).size());
        j["message"] = std::string(msg.payload.data(), msg.payload.size());
        writer->write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                      false);
      });
  log.sinks().push_back(sink);
  return {};
}

}  // namespace ecapture
