// --eventaddr kafka://BROKER[,BROKER…]/TOPIC: a producer (librdkafka) whose messages carry a
// per-connection key and host/module/pid headers. librdkafka's own queue is the bound: a full
// queue drops (counted), never blocks the processor; queued messages wait for a broker that is
// away and go out when it is back (up to message.timeout.ms).
#pragma once

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "core/result.h"
#include "output/writers.h"

struct rd_kafka_s;
struct rd_kafka_topic_s;
struct rd_kafka_message_s;

namespace ecapture {

struct KafkaAddress {
  std::vector<std::string> brokers;  // "host:port" ("[v6]:port"); port defaults to 9092
  std::string topic;
};

bool is_kafka_address(std::string_view addr);
// "kafka://b1:9092,b2:9092/topic"; errors say what is wrong with which part.
Result<KafkaAddress> parse_kafka_address(std::string_view addr);
// "key=value" → (key, value); refuses an empty key and keys the address already sets.
Result<std::pair<std::string, std::string>> parse_kafka_option(std::string_view opt);

struct KafkaStats {
  uint64_t queue_full = 0;       // refused by the producer's bounded queue
  uint64_t delivery_failed = 0;  // given up by librdkafka (timeout, purge at exit, error)
  uint64_t queued = 0;           // produced, not yet acknowledged
};

class KafkaWriter : public Writer {
 public:
  // `options`: --kafka-opt values, "key=value", passed to librdkafka after our defaults.
  static Result<std::unique_ptr<KafkaWriter>> create(const std::string& addr,
                                                     const std::vector<std::string>& options,
                                                     std::shared_ptr<spdlog::logger> log);
  ~KafkaWriter() override;
  void write(std::string_view bytes, bool binary) override;
  void write_record(const RecordMeta& meta, std::string_view bytes, bool binary) override;
  // Waits (up to 3 s) for queued messages, counts what is left as dropped, frees the producer.
  void close() override;
  bool framed() const override { return true; }  // one event per Kafka message
  std::string name() const override { return addr_; }
  std::string detail() const override;
  KafkaStats kafka_stats() const;

 private:
  KafkaWriter(std::string addr, std::shared_ptr<spdlog::logger> log)
      : addr_(std::move(addr)), log_(std::move(log)) {}
  static void on_delivery(rd_kafka_s* rk, const rd_kafka_message_s* msg, void* opaque);
  static void on_error(rd_kafka_s* rk, int err, const char* reason, void* opaque);
  static void on_log(const rd_kafka_s* rk, int level, const char* facility, const char* line);
  void poll_loop();

  std::string addr_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::shared_mutex mu_;  // produce (shared) vs. close (exclusive)
  rd_kafka_s* rk_ = nullptr;
  rd_kafka_topic_s* rkt_ = nullptr;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> brokers_down_{false};
  std::atomic<uint64_t> queue_full_{0}, delivery_failed_{0};
  // Messages librdkafka accepted and has not reported on yet (rd_kafka_outq_len also counts
  // its own requests and events, so it is not a message count).
  std::atomic<int64_t> in_queue_{0};
};

}  // namespace ecapture
