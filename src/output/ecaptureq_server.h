// The --ecaptureq WebSocket server: streams binary protobuf LogEntry messages (events, runtime
// logs, heartbeats on connect and every 15 s) to any number of eCaptureQ clients at "/".
// A client that does not keep up loses messages (counted); capture never waits for it.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/result.h"
#include "output/writers.h"

namespace ecapture {

class EcaptureqServer : public Writer {
 public:
  // `url` is ws://host:port/ (the path is ignored: eCaptureQ serves "/").
  static Result<std::shared_ptr<EcaptureqServer>> start(const std::string& url);
  ~EcaptureqServer() override;

  // One serialized LogEntry to every connected client.
  void write(std::string_view bytes, bool binary) override;
  void close() override;
  bool framed() const override { return true; }
  std::string name() const override { return url_; }

  // A runtime log line, as LOG_TYPE_PROCESS_LOG; the first kReplayLines are replayed to every
  // client that connects later.
  void log_line(std::string_view line);
  size_t clients() const;

  static constexpr size_t kReplayLines = 128;
  static constexpr size_t kClientBufferBytes = 8u << 20;

 private:
  struct Impl;
  explicit EcaptureqServer(std::string url);
  std::string url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ecapture
