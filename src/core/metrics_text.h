// A builder for the Prometheus text exposition format (version 0.0.4) behind GET /metrics:
// families keep their HELP/TYPE and samples together whatever order callers add them in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ecapture {

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // A counter's name ends in "_total"; both take integral or floating values.
  void counter(std::string_view name, std::string_view help, uint64_t value,
               const Labels& labels = {});
  void counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, uint64_t value,
             const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, double value,
             const Labels& labels = {});
  std::string str() const;

 private:
  struct Family {
    std::string name, help, type;
    std::vector<std::string> samples;
  };
  void add(std::string_view type, std::string_view name, std::string_view help,
           const Labels& labels, std::string value);

  std::vector<Family> families_;
};

// Label values: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);
// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view v);
// Shortest text that reads back as the same double ("0.25", "1e+20", "NaN", "+Inf").
std::string format_metric_double(double v);

// This process, from /proc/self: CPU time (user + system), resident set size, open fds, threads.
struct ProcessStats {
  double cpu_seconds = 0;
  uint64_t rss_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t threads = 0;
  double start_time_seconds = 0;  // Unix time
};
ProcessStats read_process_stats();
// The standard process_* families from read_process_stats().
void add_process_metrics(MetricsText& m);

}  // namespace ecapture
