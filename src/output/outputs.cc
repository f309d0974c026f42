// Output pipeline construction and teardown.
#include "output/outputs.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>

#include "output/ecaptureq_server.h"
#include "output/text_encoder.h"
#include "web/web_hub.h"

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
  for (const auto& addr : cfg.eventaddr) {
    if (addr == "-" || addr == "stdout") {
      if (format == Format::kProtobuf) {
        return make_error("--format protobuf is binary: not for stdout");
      }
      o->router_->add(format, std::make_shared<StreamWriter>(stdout));
      continue;
    }
    auto w = make_writer(addr, rot, log);
    if (!w) return make_error("--eventaddr {}", w.error().to_string());
    o->router_->add(format, std::shared_ptr<Writer>(std::move(*w)));
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
    o->tee_ = std::make_unique<web::TeeSink>(o->router_.get(), tap);
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
