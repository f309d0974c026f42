// The Kafka writer: address and option parsing, the librdkafka producer and its poll thread.
#include "output/kafka_writer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/host_id.h"

namespace ecapture {
namespace {

constexpr std::string_view kScheme = "kafka://";
constexpr int kCloseFlushMs = 3000;

// A port is 1-65535 digits-only.
bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v >= 1 && v <= 65535;
}

Result<std::string> parse_broker(std::string_view addr, std::string_view b) {
  if (b.empty()) return make_error("{}: empty broker in the list", addr);
  std::string_view host = b, port;
  if (b.front() == '[') {
    auto close = b.find(']');
    if (close == std::string_view::npos || close == 1) {
      return make_error("{}: bad IPv6 broker '{}' (use [addr]:port)", addr, b);
    }
    host = b.substr(0, close + 1);
    std::string_view rest = b.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return make_error("{}: bad broker '{}'", addr, b);
      port = rest.substr(1);
      if (!valid_port(port)) return make_error("{}: bad port in broker '{}'", addr, b);
    }
  } else {
    auto colon = b.rfind(':');
    if (colon != std::string_view::npos) {
      host = b.substr(0, colon);
      port = b.substr(colon + 1);
      if (!valid_port(port)) return make_error("{}: bad port in broker '{}'", addr, b);
    }
    if (host.empty()) return make_error("{}: missing host in broker '{}'", addr, b);
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_';
      if (!ok) return make_error("{}: bad character '{}' in broker host '{}'", addr, c, host);
    }
  }
  return fmt::format("{}:{}", host, port.empty() ? std::string_view("9092") : port);
}

}  // namespace

bool is_kafka_address(std::string_view addr) { return addr.substr(0, kScheme.size()) == kScheme; }

Result<KafkaAddress> parse_kafka_address(std::string_view addr) {
  if (!is_kafka_address(addr)) return make_error("{}: not a kafka:// address", addr);
  std::string_view rest = addr.substr(kScheme.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return make_error("{}: missing topic (use kafka://BROKER[,BROKER...]/TOPIC)", addr);
  }
  std::string_view list = rest.substr(0, slash);
  std::string_view topic = rest.substr(slash + 1);
  if (list.empty()) {
    return make_error("{}: missing broker (use kafka://BROKER[,BROKER...]/TOPIC)", addr);
  }
  KafkaAddress out;
  while (true) {
    auto comma = list.find(',');
    ASSIGN_OR_RETURN(std::string broker, parse_broker(addr, list.substr(0, comma)));
    out.brokers.push_back(std::move(broker));
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  // Kafka's own rule for topic names.
  if (topic.empty()) {
    return make_error("{}: missing topic (use kafka://BROKER[,BROKER...]/TOPIC)", addr);
  }
  if (topic.size() > 249 || topic == "." || topic == "..") {
    return make_error("{}: bad topic '{}' (1-249 characters, not '.' or '..')", addr, topic);
  }
  for (char c : topic) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) {
      return make_error("{}: bad character '{}' in topic '{}' (letters, digits, '.', '_', '-')",
                        addr, c, topic);
    }
  }
  out.topic = std::string(topic);
  return out;
}

Result<std::pair<std::string, std::string>> parse_kafka_option(std::string_view opt) {
  auto eq = opt.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return make_error("--kafka-opt '{}': use key=value (a librdkafka property)", opt);
  }
  std::string key(opt.substr(0, eq));
  if (key == "bootstrap.servers" || key == "metadata.broker.list") {
    return make_error("--kafka-opt '{}': brokers are given in the kafka:// address", opt);
  }
  return std::make_pair(std::move(key), std::string(opt.substr(eq + 1)));
}

Result<std::unique_ptr<KafkaWriter>> KafkaWriter::create(const std::string& addr,
                                                         const std::vector<std::string>& options,
                                                         std::shared_ptr<spdlog::logger> log) {
  ASSIGN_OR_RETURN(KafkaAddress a, parse_kafka_address(addr));
  std::string brokers;
  for (const auto& b : a.brokers) brokers += (brokers.empty() ? "" : ",") + b;
  // Our defaults first; --kafka-opt may override any of them.
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", brokers},
      {"client.id", "ecapture"},
      // The bound: 16 MiB like the other network writers (librdkafka's default is 1 GiB).
      {"queue.buffering.max.kbytes", "16384"},
  };
  std::map<std::string, std::string> user;
  for (const auto& o : options) {
    ASSIGN_OR_RETURN(auto kv, parse_kafka_option(o));
    user[kv.first] = kv.second;
    props.push_back(std::move(kv));
  }
  // Idempotence keeps a connection's messages in order across retries (a broker that was away);
  // not when the user chose acks or in-flight settings it conflicts with.
  if (!user.count("enable.idempotence") && !user.count("acks") &&
      !user.count("request.required.acks") &&
      !user.count("max.in.flight.requests.per.connection") && !user.count("max.in.flight")) {
    props.insert(props.begin() + 1, {"enable.idempotence", "true"});
  }
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      // Secrets (sasl.password, ssl.key.password, ...) stay out of logs and terminals.
      const bool secret = k.find("password") != std::string::npos ||
                          k.find("secret") != std::string::npos;
      return make_error("--kafka-opt {}={}: {}", k, secret ? "***" : v, err);
    }
  }
  std::unique_ptr<KafkaWriter> w(new KafkaWriter(addr, log));
  rd_kafka_conf_set_opaque(conf, w.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &KafkaWriter::on_delivery);
  rd_kafka_conf_set_error_cb(conf, &KafkaWriter::on_error);
  rd_kafka_conf_set_log_cb(conf, &KafkaWriter::on_log);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);  // rd_kafka_new owns conf only when it succeeds
    return make_error("{}: cannot create the Kafka producer: {}", addr, err);
  }
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, a.topic.c_str(), nullptr);
  if (rkt == nullptr) {
    std::string why = rd_kafka_err2str(rd_kafka_last_error());
    rd_kafka_destroy(rk);
    return make_error("{}: topic {}: {}", addr, a.topic, why);
  }
  w->rk_ = rk;
  w->rkt_ = rkt;
  w->poller_ = std::thread([p = w.get()] { p->poll_loop(); });
  log->info("kafka: producing to topic {} on {}", a.topic, brokers);
  return w;
}

KafkaWriter::~KafkaWriter() { close(); }

void KafkaWriter::poll_loop() {
  // Delivery reports and error callbacks are served here.
  while (!stop_.load()) rd_kafka_poll(rk_, 100);
}

void KafkaWriter::write(std::string_view bytes, bool binary) {
  write_record(RecordMeta{}, bytes, binary);
}

void KafkaWriter::write_record(const RecordMeta& meta, std::string_view bytes, bool /*binary*/) {
  std::shared_lock lock(mu_);
  if (rk_ == nullptr) {
    ++dropped_;
    dropped_bytes_ += bytes.size();
    return;
  }
  const std::string pid = std::to_string(meta.pid);
  const std::string& host = host_id();
  rd_kafka_resp_err_t e = rd_kafka_producev(
      rk_, RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_VALUE(const_cast<char*>(bytes.data()), bytes.size()),
      RD_KAFKA_V_KEY(meta.key.data(), meta.key.size()),
      RD_KAFKA_V_HEADER("host", host.data(), static_cast<ssize_t>(host.size())),
      RD_KAFKA_V_HEADER("module", meta.module.data(), static_cast<ssize_t>(meta.module.size())),
      RD_KAFKA_V_HEADER("pid", pid.data(), static_cast<ssize_t>(pid.size())), RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++in_queue_;
  } else {
    // __QUEUE_FULL: the bound is reached (a broker away or slow); never wait for room.
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      ++queue_full_;
    } else {
      ++delivery_failed_;
    }
    ++dropped_;
    dropped_bytes_ += bytes.size();
  }
}

void KafkaWriter::on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<KafkaWriter*>(opaque);
  --self->in_queue_;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->messages_;
    self->bytes_ += msg->len;
    if (self->brokers_down_.exchange(false)) self->log_->info("kafka {}: delivering again",
                                                              self->addr_);
  } else {
    ++self->delivery_failed_;
    ++self->dropped_;
    self->dropped_bytes_ += msg->len;
  }
}

void KafkaWriter::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaWriter*>(opaque);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    if (!self->brokers_down_.exchange(true)) {
      self->log_->warn("kafka {}: all brokers are down; queueing (up to the bound)", self->addr_);
    }
    return;
  }
  if (rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->log_->error("kafka {}: fatal: {}", self->addr_, reason);
    return;
  }
  self->log_->debug("kafka {}: {}", self->addr_, reason);
}

void KafkaWriter::on_log(const rd_kafka_t* rk, int level, const char* facility, const char* line) {
  // Connection chatter while a broker is away would flood the log: debug only; on_error says
  // what matters.
  auto* self = static_cast<KafkaWriter*>(rd_kafka_opaque(rk));
  if (self != nullptr) self->log_->debug("librdkafka[{}] {}: {}", level, facility, line);
}

void KafkaWriter::close() {
  std::unique_lock lock(mu_);
  if (rk_ == nullptr) return;
  rd_kafka_flush(rk_, kCloseFlushMs);
  stop_.store(true);
  lock.unlock();
  if (poller_.joinable()) poller_.join();
  lock.lock();
  // What the brokers did not take in time is dropped, and counted through its delivery report.
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(rk_, 500);
  const int64_t left = in_queue_.exchange(0);
  if (left > 0) {
    delivery_failed_ += static_cast<uint64_t>(left);
    dropped_ += static_cast<uint64_t>(left);
  }
  rd_kafka_topic_destroy(rkt_);
  rd_kafka_destroy(rk_);
  rkt_ = nullptr;
  rk_ = nullptr;
}

std::string KafkaWriter::detail() const {
  KafkaStats s = kafka_stats();
  return fmt::format(" queue_full={} delivery_failed={}", s.queue_full, s.delivery_failed);
}

KafkaStats KafkaWriter::kafka_stats() const {
  KafkaStats s;
  s.queue_full = queue_full_.load();
  s.delivery_failed = delivery_failed_.load();
  s.queued = static_cast<uint64_t>(std::max<int64_t>(0, in_queue_.load()));
  return s;
}

}  // namespace ecapture
