// OutputRouter: the MessageSink behind the EventProcessor. Encodes each message once per format
// and hands it to every writer (stdout, file, tcp, ws, the eCaptureQ server).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "events/event_processor.h"
#include "output/encoders.h"
#include "output/writers.h"

namespace ecapture {

class OutputRouter : public MessageSink {
 public:
  explicit OutputRouter(bool hex = false, uint64_t audit_tsize = 0)
      : hex_(hex), audit_tsize_(audit_tsize) {}
  ~OutputRouter() override;

  void add(Format format, std::shared_ptr<Writer> writer);
  void set_options(bool hex, uint64_t audit_tsize);

  void write(const Message& m) override;
  void write_audit(const AuditEvent& e) override;
  void flush() override;
  // Closes every writer (network writers send what they still hold, briefly).
  void close();
  // "writer stdout: messages=… dropped=…; writer tcp://…: …"
  std::string summary() const;
  // Every writer with its format, for /status and /metrics.
  std::vector<std::pair<Format, std::shared_ptr<Writer>>> writers() const;

 private:
  struct Route {
    Format format;
    std::shared_ptr<Writer> writer;
  };
  void send(const Route& r, const RecordMeta& meta, const std::string& encoded);

  std::mutex mu_;
  bool hex_;
  uint64_t audit_tsize_;
  std::vector<Route> routes_;
};

}  // namespace ecapture
