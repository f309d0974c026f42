// Fleet operation (issue 16): kafka:// addresses and --kafka-opt, message keys, --host-id, the
// Prometheus text format, and the Kafka writer against librdkafka's mock cluster (no root).
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <thread>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "core/host_id.h"
#include "core/metrics_text.h"
#include "output/kafka_writer.h"
#include "output/record_key.h"

namespace ecapture {
namespace {

std::string error_of(const Result<KafkaAddress>& r) { return r ? "" : r.error().to_string(); }

TEST(KafkaAddress, Parses) {
  auto a = parse_kafka_address("kafka://b1:9092,10.0.0.2:19092,[::1]:9093,b4/events.v1");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->brokers,
            (std::vector<std::string>{"b1:9092", "10.0.0.2:19092", "[::1]:9093", "b4:9092"}));
  EXPECT_EQ(a->topic, "events.v1");
  EXPECT_TRUE(is_kafka_address("kafka://x/y"));
  EXPECT_FALSE(is_kafka_address("tcp://x:1"));
}

TEST(KafkaAddress, BadAddressesNameTheProblem) {
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1:9092")),
            "kafka://b1:9092: missing topic (use kafka://BROKER[,BROKER...]/TOPIC)");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1:9092/")),
            "kafka://b1:9092/: missing topic (use kafka://BROKER[,BROKER...]/TOPIC)");
  EXPECT_EQ(error_of(parse_kafka_address("kafka:///t")),
            "kafka:///t: missing broker (use kafka://BROKER[,BROKER...]/TOPIC)");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1,,b2/t")),
            "kafka://b1,,b2/t: empty broker in the list");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1:99999/t")),
            "kafka://b1:99999/t: bad port in broker 'b1:99999'");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1:x/t")),
            "kafka://b1:x/t: bad port in broker 'b1:x'");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://:9092/t")),
            "kafka://:9092/t: missing host in broker ':9092'");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b@d:1/t")),
            "kafka://b@d:1/t: bad character '@' in broker host 'b@d'");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://[::1/t")),
            "kafka://[::1/t: bad IPv6 broker '[::1' (use [addr]:port)");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1/a/b")),
            "kafka://b1/a/b: bad character '/' in topic 'a/b' (letters, digits, '.', '_', '-')");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1/..")),
            "kafka://b1/..: bad topic '..' (1-249 characters, not '.' or '..')");
  EXPECT_EQ(error_of(parse_kafka_address("kafka://b1/" + std::string(250, 't'))).substr(0, 12),
            "kafka://b1/t");
}

TEST(KafkaOption, Parses) {
  auto o = parse_kafka_option("compression.type=zstd");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->first, "compression.type");
  EXPECT_EQ(o->second, "zstd");
  auto eq = parse_kafka_option("sasl.password=a=b");
  ASSERT_TRUE(eq);
  EXPECT_EQ(eq->second, "a=b");
  EXPECT_EQ(parse_kafka_option("acks").error().to_string(),
            "--kafka-opt 'acks': use key=value (a librdkafka property)");
  EXPECT_EQ(parse_kafka_option("=1").error().to_string(),
            "--kafka-opt '=1': use key=value (a librdkafka property)");
  EXPECT_EQ(parse_kafka_option("bootstrap.servers=x:1").error().to_string(),
            "--kafka-opt 'bootstrap.servers=x:1': brokers are given in the kafka:// address");
}

std::shared_ptr<spdlog::logger> null_log() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

TEST(KafkaWriter, BadOptionsAreOneLine) {
  auto unknown = KafkaWriter::create("kafka://127.0.0.1:1/t", {"no.such.key=1"}, null_log());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().to_string(),
            "--kafka-opt no.such.key=1: No such configuration property: \"no.such.key\"");
  auto bad = KafkaWriter::create("kafka://127.0.0.1:1/t", {"linger.ms=soon"}, null_log());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().to_string().substr(0, 28), "--kafka-opt linger.ms=soon: ");
}

Endpoint ep4(const char* ip, uint16_t port) {
  Endpoint e;
  e.family = AF_INET;
  ::inet_pton(AF_INET, ip, e.addr.data());
  e.port = port;
  return e;
}

TEST(RecordKey, SameKeyForBothDirections) {
  set_host_id("web-1");
  Message w;
  w.event.pid = 4242;
  w.event.fd = 7;
  w.event.source = "openssl";
  w.event.direction = Direction::kWrite;
  w.event.src = ep4("127.0.0.1", 51234);
  w.event.dst = ep4("127.0.0.1", 443);
  Message r = w;
  r.event.direction = Direction::kRead;
  std::swap(r.event.src, r.event.dst);
  RecordMeta mw = record_meta(w), mr = record_meta(r);
  EXPECT_EQ(mw.key, "web-1/4242/7/127.0.0.1:51234/127.0.0.1:443");
  EXPECT_EQ(mr.key, mw.key);
  EXPECT_EQ(mw.module, "openssl");
  EXPECT_EQ(mw.pid, 4242u);
  AuditEvent a;
  a.kind = "MYSQLD";
  a.pid = 99;
  RecordMeta ma = record_meta(a);
  EXPECT_EQ(ma.key, "web-1/99/mysqld");
  EXPECT_EQ(ma.module, "mysqld");
  EXPECT_EQ(connection_key("h", 1, -1, Endpoint{}, Endpoint{}), "h/1/-1/?/?");
}

TEST(HostId, ValidatesAndDefaultsToTheHostname) {
  EXPECT_TRUE(validate_host_id("node-7.example"));
  EXPECT_EQ(validate_host_id("").error().to_string(), "--host-id '': must be 1 to 253 characters");
  EXPECT_EQ(validate_host_id("a/b").error().to_string(),
            "--host-id 'a/b': no whitespace, control characters or '/' allowed");
  EXPECT_FALSE(validate_host_id("a b"));
  char name[256] = {};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  set_host_id("");
  EXPECT_EQ(host_id(), name);
  set_host_id("x1");
  EXPECT_EQ(host_id(), "x1");
}

TEST(MetricsText, FormatsFamiliesTogether) {
  MetricsText m;
  m.counter("a_total", "A things.", uint64_t{3}, {{"sink", "kafka://b/t"}});
  m.gauge("g", "Line\nbreak \\ here.", 0.25);
  m.counter("a_total", "A things.", uint64_t{18446744073709551615u},
            {{"sink", "q\"uo\\te\nnl"}, {"format", "json"}});
  m.gauge("h", "H.", uint64_t{0});
  EXPECT_EQ(m.str(),
            "# HELP a_total A things.\n"
            "# TYPE a_total counter\n"
            "a_total{sink=\"kafka://b/t\"} 3\n"
            "a_total{sink=\"q\\\"uo\\\\te\\nnl\",format=\"json\"} 18446744073709551615\n"
            "# HELP g Line\\nbreak \\\\ here.\n"
            "# TYPE g gauge\n"
            "g 0.25\n"
            "# HELP h H.\n"
            "# TYPE h gauge\n"
            "h 0\n");
  EXPECT_EQ(format_metric_double(1e20), "1e+20");
  EXPECT_EQ(format_metric_double(std::numeric_limits<double>::infinity()), "+Inf");
}

TEST(MetricsText, ProcessStatsAreThisProcess) {
  ProcessStats p = read_process_stats();
  EXPECT_GT(p.rss_bytes, 1u << 20);
  EXPECT_GE(p.threads, 1u);
  EXPECT_GE(p.open_fds, 3u);
  auto now = std::chrono::duration<double>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(p.start_time_seconds, now + 1);
  EXPECT_GT(p.start_time_seconds, now - 3600);
}

size_t thread_count() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// A joined librdkafka thread can stay listed in /proc for a moment: wait (bounded).
bool wait_threads(size_t want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (thread_count() != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return thread_count() == want;
}

// librdkafka's in-process mock cluster and a consumer of one topic.
class MockCluster {
 public:
  explicit MockCluster(const char* topic, int partitions) : topic_(topic) {
    char err[256];
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof(err));
    mc_ = rd_kafka_mock_cluster_new(owner_, 3);
    rd_kafka_mock_topic_create(mc_, topic, partitions, 3);
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(mc_);
    rd_kafka_conf_t* cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", bootstraps_.c_str(), err, sizeof(err));
    rd_kafka_conf_set(cc, "group.id", "fleet_test", err, sizeof(err));
    rd_kafka_conf_set(cc, "log_level", "0", err, sizeof(err));  // brokers set down on purpose
    consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    rd_kafka_poll_set_consumer(consumer_);
    auto* parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(consumer_, parts);
    rd_kafka_topic_partition_list_destroy(parts);
  }
  ~MockCluster() {
    rd_kafka_consumer_close(consumer_);
    rd_kafka_destroy(consumer_);
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(owner_);
  }
  std::string address() const { return "kafka://" + bootstraps_ + "/" + topic_; }
  void set_down(bool down) {
    for (int b = 1; b <= 3; ++b) {
      down ? rd_kafka_mock_broker_set_down(mc_, b) : rd_kafka_mock_broker_set_up(mc_, b);
    }
  }
  struct Got {
    int partition;
    std::string key, value;
    std::map<std::string, std::string> headers;
  };
  // Reads until `n` messages arrived or 10 s passed.
  std::vector<Got> consume(size_t n) {
    std::vector<Got> out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Got g{m->partition, std::string(static_cast<const char*>(m->key), m->key_len),
              std::string(static_cast<const char*>(m->payload), m->len), {}};
        rd_kafka_headers_t* h = nullptr;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* val;
          size_t len;
          for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &len) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
            g.headers[name] = std::string(static_cast<const char*>(val), len);
          }
        }
        out.push_back(std::move(g));
      }
      rd_kafka_message_destroy(m);
    }
    return out;
  }

 private:
  std::string topic_, bootstraps_;
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
};

TEST(KafkaWriter, DeliversKeyedMessagesInOrderPerKey) {
  set_host_id("unit-host");
  MockCluster cluster("unit-events", 4);
  auto w = KafkaWriter::create(cluster.address(), {"linger.ms=1"}, null_log());
  ASSERT_TRUE(w) << w.error().to_string();
  for (int i = 0; i < 20; ++i) {
    RecordMeta meta{fmt::format("unit-host/{}/3/a/b", 100 + i % 3), "openssl",
                    static_cast<uint32_t>(100 + i % 3)};
    (*w)->write_record(meta, fmt::format("msg-{}-{}", i % 3, i), false);
  }
  (*w)->close();
  WriterStats s = (*w)->stats();
  EXPECT_EQ(s.messages, 20u);
  EXPECT_EQ(s.dropped, 0u);
  auto got = cluster.consume(20);
  ASSERT_EQ(got.size(), 20u);
  std::map<std::string, std::vector<std::string>> per_key;
  std::map<std::string, int> partition_of;
  for (const auto& g : got) {
    per_key[g.key].push_back(g.value);
    if (partition_of.count(g.key)) {
      EXPECT_EQ(partition_of[g.key], g.partition);
    }
    partition_of[g.key] = g.partition;
    EXPECT_EQ(g.headers.at("host"), "unit-host");
    EXPECT_EQ(g.headers.at("module"), "openssl");
    EXPECT_EQ(g.key, fmt::format("unit-host/{}/3/a/b", g.headers.at("pid")));
  }
  ASSERT_EQ(per_key.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    std::vector<std::string> want;
    for (int i = k; i < 20; i += 3) want.push_back(fmt::format("msg-{}-{}", k, i));
    EXPECT_EQ(per_key[fmt::format("unit-host/{}/3/a/b", 100 + k)], want);
  }
}

TEST(KafkaWriter, BoundedQueueDropsExactlyAndDeliversTheRestWhenBrokersReturn) {
  MockCluster cluster("unit-bound", 1);
  const size_t threads_before = thread_count();
  {
    auto w = KafkaWriter::create(cluster.address(),
                                 {"queue.buffering.max.messages=5", "reconnect.backoff.max.ms=200"},
                                 null_log());
    ASSERT_TRUE(w) << w.error().to_string();
    cluster.set_down(true);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 12; ++i) (*w)->write_record(RecordMeta{"k", "m", 1}, "x", false);
    // A full queue never blocks the caller.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
    EXPECT_EQ((*w)->kafka_stats().queue_full, 7u);
    EXPECT_EQ((*w)->kafka_stats().queued, 5u);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    cluster.set_down(false);
    (*w)->close();
    WriterStats s = (*w)->stats();
    EXPECT_EQ(s.messages, 5u);
    EXPECT_EQ(s.dropped, 7u);
    EXPECT_EQ((*w)->detail(), " queue_full=7 delivery_failed=0");
    EXPECT_EQ(cluster.consume(5).size(), 5u);
  }
  EXPECT_TRUE(wait_threads(threads_before)) << thread_count() << " vs " << threads_before;
}

}  // namespace
}  // namespace ecapture
