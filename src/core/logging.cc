// Logger construction.
#include "core/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace ecapture {

Result<std::shared_ptr<spdlog::logger>> make_logger(const GlobalConfig& cfg) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  // URLs (tcp://) are added by the output pipeline (output/outputs.h add_log_destinations).
  if (!cfg.logaddr.empty() && cfg.logaddr.find("://") == std::string::npos) {
    // Create it 0600 if missing; spdlog opens in append mode, so existing content stays.
    int fd = ::open(cfg.logaddr.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return make_errno_error(errno, "-l/--logaddr {}: cannot open", cfg.logaddr);
    ::close(fd);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.logaddr, false));
    } catch (const spdlog::spdlog_ex& e) {
      return make_error("-l/--logaddr {}: {}", cfg.logaddr, e.what());
    }
  }
  auto log = std::make_shared<spdlog::logger>("ecapture", sinks.begin(), sinks.end());
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  log->set_level(cfg.debug ? spdlog::level::debug : spdlog::level::info);
  log->flush_on(spdlog::level::info);
  return log;
}

}  // namespace ecapture
