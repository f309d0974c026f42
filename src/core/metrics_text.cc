// Prometheus text format and the process_* metrics.
#include "core/metrics_text.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace ecapture {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_metric_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void MetricsText::add(std::string_view type, std::string_view name, std::string_view help,
                      const Labels& labels, std::string value) {
  Family* f = nullptr;
  for (auto& existing : families_) {
    if (existing.name == name) f = &existing;
  }
  if (f == nullptr) {
    families_.push_back(Family{std::string(name), std::string(help), std::string(type), {}});
    f = &families_.back();
  }
  std::string sample(name);
  if (!labels.empty()) {
    sample += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) sample += ',';
      fmt::format_to(std::back_inserter(sample), "{}=\"{}\"", labels[i].first,
                     escape_label_value(labels[i].second));
    }
    sample += '}';
  }
  sample += ' ';
  sample += value;
  f->samples.push_back(std::move(sample));
}

void MetricsText::counter(std::string_view name, std::string_view help, uint64_t value,
                          const Labels& labels) {
  add("counter", name, help, labels, std::to_string(value));
}
void MetricsText::counter(std::string_view name, std::string_view help, double value,
                          const Labels& labels) {
  add("counter", name, help, labels, format_metric_double(value));
}
void MetricsText::gauge(std::string_view name, std::string_view help, uint64_t value,
                        const Labels& labels) {
  add("gauge", name, help, labels, std::to_string(value));
}
void MetricsText::gauge(std::string_view name, std::string_view help, double value,
                        const Labels& labels) {
  add("gauge", name, help, labels, format_metric_double(value));
}

std::string MetricsText::str() const {
  std::string out;
  for (const auto& f : families_) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name,
                   escape_help(f.help), f.name, f.type);
    for (const auto& s : f.samples) {
      out += s;
      out += '\n';
    }
  }
  return out;
}

ProcessStats read_process_stats() {
  ProcessStats p;
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after "(comm)", which may itself hold spaces and parentheses.
  auto close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(line.substr(close + 2));
    std::vector<std::string> f;
    for (std::string w; in >> w;) f.push_back(w);
    // f[0] is field 3 (state): utime 14, stime 15, num_threads 20, starttime 22, rss 24.
    if (f.size() > 21) {
      const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
      p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tick;
      p.threads = std::stoull(f[17]);
      p.rss_bytes = std::stoull(f[21]) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
      std::ifstream procstat("/proc/stat");
      for (std::string l; std::getline(procstat, l);) {
        if (l.rfind("btime ", 0) == 0) {
          p.start_time_seconds = std::stod(l.substr(6)) + std::stod(f[19]) / tick;
        }
      }
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++p.open_fds;
    }
    ::closedir(d);
    if (p.open_fds > 0) --p.open_fds;  // the directory stream's own fd
  }
  return p;
}

void add_process_metrics(MetricsText& m) {
  ProcessStats p = read_process_stats();
  m.counter("process_cpu_seconds_total", "User and system CPU time spent in seconds.",
            p.cpu_seconds);
  m.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.rss_bytes);
  m.gauge("process_open_fds", "Number of open file descriptors.", p.open_fds);
  m.gauge("process_threads", "Number of OS threads in the process.", p.threads);
  m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          p.start_time_seconds);
}

}  // namespace ecapture
