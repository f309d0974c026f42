// The reader seam: the real EventReader and its ring-buffer trampoline driven by a test poll
// source. Handler errors and exceptions are counted and polling goes on; a poll failure ends the
// run as a module error that the runner and /status report.
#include <gtest/gtest.h>

#include <spdlog/sinks/null_sink.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bpf/event_reader.h"
#include "core/registry.h"
#include "core/runner.h"

namespace ecapture {
namespace {

using bpf::EventReader;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

template <typename Pred>
bool wait_for(Pred p) {
  for (int i = 0; i < 500 && !p(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(4));
  return p();
}

TEST(EventReaderSeam, FailingAndThrowingRecordsAreCountedAndPollingGoesOn) {
  std::atomic<int> polls{0};
  // Each poll hands one record: its first byte says what the handler does with it.
  const uint8_t kinds[] = {'o', 'e', 't', 'o', 'x', 'o'};
  auto source = [&](int, EventReader::RingCallback deliver, void* ctx) -> int {
    const int n = polls.fetch_add(1);
    if (n >= static_cast<int>(std::size(kinds))) return 0;
    uint8_t record[4] = {kinds[n], 1, 2, 3};
    return deliver(ctx, record, sizeof(record)) == 0 ? 1 : -EINVAL;
  };
  std::atomic<int> handled{0};
  auto reader = EventReader::over(source, [&](std::span<const uint8_t> r) -> Result<void> {
    switch (r[0]) {
      case 'e': return make_error("bad record of {} bytes", r.size());
      case 't': throw std::runtime_error("allocation failed");
      case 'x': throw 42;
      default: handled.fetch_add(1); return {};
    }
  });
  std::vector<std::string> reported;
  std::vector<uint64_t> counts;
  reader->on_record_error([&](const Error& e, uint64_t count) {
    reported.push_back(e.to_string());
    counts.push_back(count);
  });
  bool poll_failed = false;
  reader->on_poll_error([&](const Error&) { poll_failed = true; });
  reader->start();
  ASSERT_TRUE(wait_for([&] { return polls.load() > static_cast<int>(std::size(kinds)) + 2; }));
  reader->stop();
  EXPECT_EQ(handled.load(), 3);
  EXPECT_EQ(reader->decode_errors(), 3u);
  EXPECT_EQ(reported, (std::vector<std::string>{"bad record of 4 bytes", "allocation failed",
                                                "unknown exception in a record handler"}));
  EXPECT_EQ(counts, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_FALSE(poll_failed);
}

// A module whose event buffer fails after the first poll, as a real module's reader reports it.
struct PollConfig : ConfigOf<PollConfig> {
  const FieldTable& fields() const override {
    static const FieldTable t;
    return t;
  }
};

class PollFailModule final : public Module {
 public:
  PollFailModule() : Module("pollfail") {}

 protected:
  Result<void> on_init() override { return {}; }
  Result<void> on_start() override { return {}; }
  Result<void> on_run() override {
    auto source = [n = 0](int, EventReader::RingCallback, void*) mutable {
      return n++ == 0 ? 0 : -EIO;
    };
    reader_ = EventReader::over(source, [](std::span<const uint8_t>) -> Result<void> { return {}; });
    reader_->on_poll_error([this](const Error& e) { report_error(e); });
    reader_->start();
    return {};
  }
  void on_stop() override { reader_->stop(); }
  void on_close() override { reader_.reset(); }

 private:
  std::unique_ptr<EventReader> reader_;
};

TEST(EventReaderSeam, PollFailureEndsTheRunWithItsErrorInStatus) {
  ModuleRegistry r;
  ASSERT_TRUE(r.add(make_entry<PollConfig>("pollfail", {}, "", {"/pollfail"}, "pollfail",
                                           [] { return ModulePtr(new PollFailModule()); })));
  Runner runner(r, nullptr, quiet());
  ASSERT_TRUE(runner.start("pollfail", std::make_unique<PollConfig>()));
  EXPECT_EQ(runner.wait(), 1);
  const RunnerStatus s = runner.status();
  EXPECT_EQ(s.state, ModuleState::kError);
  EXPECT_EQ(s.error, "reading the event buffer failed; capture stopped: Input/output error");
}

}  // namespace
}  // namespace ecapture
