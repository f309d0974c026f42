// Registry, module lifecycle and runner tests with a fake module (no root, no kernel).
#include <gtest/gtest.h>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "core/module.h"
#include "core/registry.h"
#include "core/runner.h"

namespace ecapture {
namespace {

struct FakeConfig : ConfigOf<FakeConfig> {
  int tag = 0;
  bool fail_init = false;
  bool fail_start = false;
  bool fail_run = false;
  const FieldTable& fields() const override {
    static const FieldTable t;
    return t;
  }
};

// A registry entry for a fake module (no flags, no API path).
ModuleInfo fake_entry(std::string name, std::vector<std::string> aliases,
                      std::function<ModulePtr()> make) {
  return make_entry<FakeConfig>(name, std::move(aliases), "", {}, name, std::move(make));
}

// Records every hook call and how many "resources" it holds, so tests can see leaks.
struct FakeLedger {
  std::atomic<int> acquired{0};
  std::atomic<int> inits{0}, starts{0}, runs{0}, stops{0}, closes{0};
  std::vector<int> started_tags;
  std::mutex mu;
};

class FakeModule final : public Module {
 public:
  FakeModule(std::string name, FakeLedger* ledger) : Module(std::move(name)), l_(ledger) {}
  using Module::report_error;
  bool stop_token_was_clean = false;

 protected:
  Result<void> on_init() override {
    l_->inits++;
    if (config_as<FakeConfig>().fail_init) return make_error("init refused");
    return {};
  }
  Result<void> on_start() override {
    l_->starts++;
    held_ += 1;  // something attached before the failure
    l_->acquired++;
    if (config_as<FakeConfig>().fail_start) return make_error("attach failed");
    stop_token_was_clean = !ctx().stop.stop_requested();
    std::lock_guard lock(l_->mu);
    l_->started_tags.push_back(config_as<FakeConfig>().tag);
    return {};
  }
  Result<void> on_run() override {
    l_->runs++;
    if (config_as<FakeConfig>().fail_run) return make_error("reader failed");
    return {};
  }
  void on_stop() override { l_->stops++; }
  void on_close() override {
    l_->closes++;
    l_->acquired -= held_;
    held_ = 0;
  }

 private:
  FakeLedger* l_;
  int held_ = 0;
};

std::shared_ptr<spdlog::logger> null_logger() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

ModuleContext test_ctx() {
  ModuleContext c;
  c.log = null_logger();
  return c;
}

std::unique_ptr<FakeConfig> cfg(int tag = 0) {
  auto c = std::make_unique<FakeConfig>();
  c->tag = tag;
  return c;
}

TEST(RegistryTest, FindsByNameAndAlias) {
  FakeLedger l;
  ModuleRegistry r;
  ASSERT_TRUE(r.add(fake_entry("tls", {"openssl"}, [&] { return ModulePtr(new FakeModule("tls", &l)); })));
  ASSERT_NE(r.find("tls"), nullptr);
  EXPECT_EQ(r.find("openssl"), r.find("tls"));
  EXPECT_EQ(r.find("gotls"), nullptr);
  auto m = r.create("openssl");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)->name(), "tls");
}

TEST(RegistryTest, RejectsDuplicatesAndEmptyNames) {
  FakeLedger l;
  auto make = [&] { return ModulePtr(new FakeModule("x", &l)); };
  ModuleRegistry r;
  ASSERT_TRUE(r.add(fake_entry("tls", {"openssl"}, make)));
  auto dup_name = r.add(fake_entry("tls", {}, make));
  ASSERT_FALSE(dup_name);
  EXPECT_NE(dup_name.error().message.find("already taken by module tls"), std::string::npos);
  auto dup_alias = r.add(fake_entry("other", {"openssl"}, make));
  ASSERT_FALSE(dup_alias);
  EXPECT_NE(dup_alias.error().message.find("openssl"), std::string::npos);
  EXPECT_FALSE(r.add(fake_entry("", {}, make)));
  EXPECT_FALSE(r.add(fake_entry("y", {""}, make)));
  EXPECT_FALSE(r.add(fake_entry("z", {}, nullptr)));
  EXPECT_FALSE(r.add(fake_entry("w", {"a", "a"}, make)));
  EXPECT_EQ(r.modules().size(), 1u);
}

TEST(RegistryTest, UnknownNameListsAvailableModules) {
  FakeLedger l;
  ModuleRegistry r;
  ASSERT_TRUE(r.add(fake_entry("tls", {}, [&] { return ModulePtr(new FakeModule("tls", &l)); })));
  ASSERT_TRUE(r.add(fake_entry("bash", {}, [&] { return ModulePtr(new FakeModule("bash", &l)); })));
  auto m = r.create("nosuch");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message, "unknown module nosuch: available modules are tls, bash");
}

TEST(RegistryTest, BuiltinRegistryHasTls) {
  const auto& r = builtin_registry();
  ASSERT_NE(r.find("tls"), nullptr);
  EXPECT_EQ(r.find("openssl")->name, "tls");
}

TEST(LifecycleTest, HappyPath) {
  FakeLedger l;
  {
    ModulePtr m(new FakeModule("fake", &l));
    EXPECT_EQ(m->state(), ModuleState::kUninitialized);
    ASSERT_TRUE(m->init(test_ctx(), cfg()));
    EXPECT_EQ(m->state(), ModuleState::kInitialized);
    ASSERT_TRUE(m->run());
    EXPECT_EQ(m->state(), ModuleState::kRunning);
    m->stop();
    EXPECT_EQ(m->state(), ModuleState::kStopping);
    m->close();
    EXPECT_EQ(m->state(), ModuleState::kClosed);
    m->close();  // idempotent
  }
  EXPECT_EQ(l.stops, 1);
  EXPECT_EQ(l.closes, 1);
  EXPECT_EQ(l.acquired, 0);
}

TEST(LifecycleTest, SecondInitRefused) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  ASSERT_TRUE(m->init(test_ctx(), cfg()));
  auto again = m->init(test_ctx(), cfg());
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("init called twice"), std::string::npos);
  EXPECT_EQ(l.inits, 1);
}

TEST(LifecycleTest, RunBeforeInitRefusedAndStopBeforeRunHarmless) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  EXPECT_FALSE(m->run());
  m->stop();
  EXPECT_EQ(m->state(), ModuleState::kUninitialized);
  ASSERT_TRUE(m->init(test_ctx(), cfg()));
  m->stop();
  EXPECT_EQ(m->state(), ModuleState::kInitialized);
  EXPECT_EQ(l.stops, 0);
}

TEST(LifecycleTest, InitErrorGoesToErrorState) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  auto c = cfg();
  c->fail_init = true;
  auto r = m->init(test_ctx(), std::move(c));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "init refused");
  EXPECT_EQ(m->state(), ModuleState::kError);
  EXPECT_FALSE(m->run());
  m->close();
  EXPECT_EQ(m->state(), ModuleState::kClosed);
  EXPECT_EQ(l.closes, 1);
}

TEST(LifecycleTest, StartErrorLeavesNothingAttached) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  auto c = cfg();
  c->fail_start = true;
  ASSERT_TRUE(m->init(test_ctx(), std::move(c)));
  auto r = m->run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "attach failed");
  EXPECT_EQ(m->state(), ModuleState::kError);
  EXPECT_EQ(l.acquired, 0) << "resources of the failed start were not released";
  m->close();
  EXPECT_EQ(l.closes, 1) << "close after an error must not release twice";
}

TEST(LifecycleTest, RunErrorReleasesEverything) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  auto c = cfg();
  c->fail_run = true;
  ASSERT_TRUE(m->init(test_ctx(), std::move(c)));
  ASSERT_FALSE(m->run());
  EXPECT_EQ(m->state(), ModuleState::kError);
  EXPECT_EQ(l.acquired, 0);
  EXPECT_EQ(l.stops, 1);
}

TEST(LifecycleTest, DeleterClosesRunningModule) {
  FakeLedger l;
  {
    ModulePtr m(new FakeModule("fake", &l));
    ASSERT_TRUE(m->init(test_ctx(), cfg()));
    ASSERT_TRUE(m->run());
  }
  EXPECT_EQ(l.stops, 1);
  EXPECT_EQ(l.closes, 1);
  EXPECT_EQ(l.acquired, 0);
}

TEST(LifecycleTest, InvalidGlobalConfigRejectedAtInit) {
  FakeLedger l;
  ModulePtr m(new FakeModule("fake", &l));
  auto c = cfg();
  c->global.btf = 2;
  auto r = m->init(test_ctx(), std::move(c));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--btf-file"), std::string::npos);
  EXPECT_EQ(l.inits, 0);
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto make = [this](const char* name) {
      return [this, name] {
        auto* m = new FakeModule(name, &ledger);
        last = m;
        return ModulePtr(m);
      };
    };
    ASSERT_TRUE(registry.add(fake_entry("alpha", {"a"}, make("alpha"))));
    ASSERT_TRUE(registry.add(fake_entry("beta", {}, make("beta"))));
  }
  FakeLedger ledger;
  ModuleRegistry registry;
  std::atomic<FakeModule*> last{nullptr};
};

TEST_F(RunnerTest, StopRequestExitsZeroAndCloses) {
  Runner runner(registry, nullptr, null_logger());
  ASSERT_TRUE(runner.start("a", cfg(1)));
  EXPECT_EQ(runner.status().module, "alpha");
  EXPECT_EQ(runner.status().state, ModuleState::kRunning);
  runner.request_stop();
  EXPECT_EQ(runner.wait(), 0);
  EXPECT_EQ(ledger.closes, 1);
  EXPECT_EQ(ledger.acquired, 0);
}

TEST_F(RunnerTest, StartFailureIsReturned) {
  Runner runner(registry, nullptr, null_logger());
  auto c = cfg();
  c->fail_start = true;
  auto r = runner.start("alpha", std::move(c));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "attach failed");
  EXPECT_EQ(ledger.acquired, 0);
  EXPECT_FALSE(runner.start("nosuch", cfg()));
}

TEST_F(RunnerTest, ModuleErrorExitsNonZero) {
  Runner runner(registry, nullptr, null_logger());
  ASSERT_TRUE(runner.start("alpha", cfg()));
  std::thread t([&] { last.load()->report_error(make_error("reader died")); });
  EXPECT_EQ(runner.wait(), 1);
  t.join();
  EXPECT_EQ(ledger.acquired, 0);
  EXPECT_EQ(ledger.closes, 1);
}

TEST_F(RunnerTest, ReloadSwitchesModuleWithFreshContext) {
  Runner runner(registry, nullptr, null_logger());
  ASSERT_TRUE(runner.start("alpha", cfg(1)));
  std::thread waiter([&] { EXPECT_EQ(runner.wait(), 0); });
  auto fut = runner.request_reload("beta", cfg(2));
  auto r = fut.get();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(last.load()->name(), "beta");
  EXPECT_TRUE(last.load()->stop_token_was_clean);
  auto st = runner.status();
  EXPECT_EQ(st.module, "beta");
  EXPECT_EQ(st.reloads, 1u);
  EXPECT_EQ(st.state, ModuleState::kRunning);
  EXPECT_EQ(ledger.closes, 1);  // the first module was closed
  runner.request_stop();
  waiter.join();
  EXPECT_EQ(ledger.acquired, 0);
  std::lock_guard lock(ledger.mu);
  EXPECT_EQ(ledger.started_tags, (std::vector<int>{1, 2}));
}

TEST_F(RunnerTest, FailedReloadRestoresPreviousModule) {
  Runner runner(registry, nullptr, null_logger());
  ASSERT_TRUE(runner.start("alpha", cfg(1)));
  std::thread waiter([&] { EXPECT_EQ(runner.wait(), 0); });
  auto bad = cfg(2);
  bad->fail_start = true;
  auto r = runner.request_reload("beta", std::move(bad)).get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "attach failed");
  auto st = runner.status();
  EXPECT_EQ(st.module, "alpha");
  EXPECT_EQ(st.state, ModuleState::kRunning);
  EXPECT_EQ(ledger.acquired, 1);  // only the restored module holds something
  runner.request_stop();
  waiter.join();
  EXPECT_EQ(ledger.acquired, 0);
  std::lock_guard lock(ledger.mu);
  EXPECT_EQ(ledger.started_tags, (std::vector<int>{1, 1}));
}

TEST_F(RunnerTest, ManyReloadsLeaveNothingBehind) {
  Runner runner(registry, nullptr, null_logger());
  ASSERT_TRUE(runner.start("alpha", cfg(0)));
  std::thread waiter([&] { EXPECT_EQ(runner.wait(), 0); });
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(runner.request_reload(i % 2 ? "beta" : "alpha", cfg(i)).get());
    EXPECT_EQ(ledger.acquired, 1);
  }
  EXPECT_EQ(runner.status().reloads, 50u);
  runner.request_stop();
  waiter.join();
  EXPECT_EQ(ledger.acquired, 0);
  EXPECT_EQ(ledger.closes, 51);
}

TEST(ConfigTest, ValidationMessagesNameFlagAndValues) {
  GlobalConfig g;
  EXPECT_TRUE(g.validate());
  g.btf = 3;
  EXPECT_EQ(g.validate().error().message,
            "invalid value 3 for --btf: allowed values are 0 (auto), 1 (CO-RE), 2 (non-CO-RE)");
  g.btf = 2;
  EXPECT_NE(g.validate().error().message.find("--btf-file PATH"), std::string::npos);
  g.btf = 1;
  g.mapsize = 0;
  EXPECT_NE(g.validate().error().message.find("--mapsize"), std::string::npos);
  g.mapsize = 1024;
  g.btf_file = "/nonexistent/btf";
  EXPECT_NE(g.validate().error().message.find("--btf-file /nonexistent/btf: no such file"),
            std::string::npos);
}

}  // namespace
}  // namespace ecapture
