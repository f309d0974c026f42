// `ecapture all` (AllModule) with fake parts: each part's lifecycle, parts that cannot run as
// warnings, none running as an error, settings handed to every part, one shared key log, counters
// summed into one summary, the parts' target reports joined, the refused per-library flags.
#include "modules/all/all_module.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/registry.h"
#include "registry_json.h"
#include "tls/tls_module.h"

namespace ecapture {
namespace {

using all::AllConfig;
using all::AllModule;

// What a fake part does and what happened to it, by part name.
struct Script {
  bool fail_init = false;
  bool fail_start = false;
  uint64_t events = 0;  // counted at run
  nlohmann::json report = nlohmann::json::array();
};

struct Ledger {
  std::map<std::string, Script> script;
  std::map<std::string, std::vector<std::string>> calls;         // hook names in order
  std::map<std::string, std::unique_ptr<ModuleConfig>> configs;  // what each part got
  std::map<std::string, ModuleContext> contexts;
  int held = 0;  // resources acquired at start and not released
};

// A part with capture settings (as tls, gotls and gnutls have).
struct CaptureConfig : ConfigOf<CaptureConfig>, tls::CaptureFields {
  CaptureConfig() : CaptureFields("own_key.log", "own.pcapng") {}
  const FieldTable& fields() const override {
    static const FieldTable t;
    return t;
  }
};

// A part without them (as nss has).
struct PlainConfig : ConfigOf<PlainConfig> {
  const FieldTable& fields() const override {
    static const FieldTable t;
    return t;
  }
};

class FakePart final : public Module {
 public:
  FakePart(std::string name, Ledger* l) : Module(std::move(name)), l_(l) {}
  using Module::report_error;
  nlohmann::json target_report() const override { return l_->script[name()].report; }

 protected:
  Result<void> on_init() override {
    l_->calls[name()].push_back("init");
    l_->configs[name()] = config()->clone();
    l_->contexts[name()] = ctx();
    if (l_->script[name()].fail_init) return make_error("nothing to hook");
    return {};
  }
  Result<void> on_start() override {
    l_->calls[name()].push_back("start");
    held_ = true;
    l_->held++;
    if (l_->script[name()].fail_start) return make_error("attach failed");
    return {};
  }
  Result<void> on_run() override {
    l_->calls[name()].push_back("run");
    counters_mut().events.fetch_add(l_->script[name()].events);
    counters_mut().bytes.fetch_add(10 * l_->script[name()].events);
    counters_mut().targets.store(1);
    return {};
  }
  void on_stop() override { l_->calls[name()].push_back("stop"); }
  void on_close() override {
    l_->calls[name()].push_back("close");
    if (held_) l_->held--;
    held_ = false;
  }

 private:
  Ledger* l_;
  bool held_ = false;
};

// A TLS part writing one key log line when it runs, through the TLS layer's key output.
class FakeTlsPart final : public tls::TlsModule {
 public:
  FakeTlsPart(std::string name, std::string random) : TlsModule(name, name), random_(random) {}

 protected:
  Result<void> on_init() override {
    const auto& c = config_as<CaptureConfig>();
    ASSIGN_OR_RETURN(auto mode, tls::parse_capture_mode(c.model));
    return open_keys(c, mode);
  }
  Result<void> on_start() override { return {}; }
  Result<void> on_run() override {
    const KeylogLine line{"CLIENT_RANDOM", random_, std::string(96, 'b')};
    const char comm[ECAP_TASK_COMM_LEN] = "client";
    add_keys(std::span(&line, 1), "TLS 1.2 master secret", 4242, 0, comm, ecap_sock_tuple{}, 0);
    return {};
  }

 private:
  std::string random_;
};

class AllModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text));
    log->set_pattern("%l %v");
  }
  // Parts a and b have capture settings, c has none.
  void add_fake(const std::string& name, bool capture = true) {
    auto make = [this, name] { return ModulePtr(new FakePart(name, &ledger)); };
    if (capture) {
      ASSERT_TRUE(registry.add(make_entry<CaptureConfig>(name, {}, "", {}, name, make)));
    } else {
      ASSERT_TRUE(registry.add(make_entry<PlainConfig>(name, {}, "", {}, name, make)));
    }
  }
  void add_fakes() {
    add_fake("a");
    add_fake("b");
    add_fake("c", false);
  }
  ModulePtr make(std::vector<std::string> parts = {"a", "b", "c"}) {
    return ModulePtr(new AllModule(registry, std::move(parts)));
  }
  ModuleContext context() {
    ModuleContext c;
    c.log = log;
    c.on_error = [this](const Error& e) { errors.push_back(e.to_string()); };
    return c;
  }
  std::unique_ptr<AllConfig> config(const std::string& model = "text") {
    auto c = std::make_unique<AllConfig>();
    c->model = model;
    return c;
  }
  std::vector<std::string> log_lines() const {
    std::vector<std::string> out;
    std::istringstream in(log_text.str());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  size_t count_lines(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& l : log_lines()) n += l.rfind(prefix, 0) == 0;
    return n;
  }
  AllModule& as_all(ModulePtr& m) { return static_cast<AllModule&>(*m); }

  Ledger ledger;
  ModuleRegistry registry;
  std::ostringstream log_text;
  std::shared_ptr<spdlog::logger> log;
  std::vector<std::string> errors;
};

using Calls = std::vector<std::string>;

TEST_F(AllModuleTest, EveryPartRunsItsOwnLifecycleWithOneSummary) {
  add_fakes();
  ledger.script["a"].events = 3;
  ledger.script["b"].events = 4;
  ledger.script["c"].events = 5;
  ModulePtr m = make();
  ASSERT_TRUE(m->init(context(), config()));
  ASSERT_TRUE(m->run());
  EXPECT_EQ(m->state(), ModuleState::kRunning);
  EXPECT_EQ(as_all(m).running_parts(), (std::vector<std::string>{"a", "b", "c"}));
  const CounterValues c = m->counter_values();
  EXPECT_EQ(c.events, 12u);
  EXPECT_EQ(c.bytes, 120u);
  EXPECT_EQ(c.targets, 3u);
  for (const char* p : {"a", "b", "c"}) {
    EXPECT_EQ(ledger.calls[p], (Calls{"init", "start", "run"})) << p;
    EXPECT_TRUE(ledger.contexts[p].part) << p;
  }
  m->stop();
  m->close();
  for (const char* p : {"a", "b", "c"}) {
    EXPECT_EQ(ledger.calls[p], (Calls{"init", "start", "run", "stop", "close"})) << p;
  }
  EXPECT_EQ(ledger.held, 0);
  EXPECT_EQ(count_lines("info all: capture started (a, b, c)"), 1u) << log_text.str();
  // One summary, the parts' counters summed; the parts log none of their own.
  EXPECT_EQ(count_lines("info summary: "), 1u) << log_text.str();
  EXPECT_EQ(count_lines("info summary: events=12 bytes=120 lost=0 decode_errors=0 "
                        "map_update_failures=0"),
            1u)
      << log_text.str();
  EXPECT_TRUE(errors.empty());
}

TEST_F(AllModuleTest, PartsThatCannotRunAreWarningsAndReported) {
  add_fakes();
  ledger.script["a"].fail_init = true;
  ledger.script["b"].fail_start = true;
  ledger.script["c"].events = 2;
  ledger.script["c"].report = {{{"path", "/lib/libc.so"}, {"version", "1.0"}}};
  ModulePtr m = make({"a", "b", "c", "zz"});
  ASSERT_TRUE(m->init(context(), config()));
  ASSERT_TRUE(m->run());
  EXPECT_EQ(as_all(m).running_parts(), (std::vector<std::string>{"c"}));
  using Skipped = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(as_all(m).skipped_parts(), (Skipped{{"a", "nothing to hook"},
                                                {"b", "attach failed"},
                                                {"zz", "no such module in this build"}}));
  EXPECT_EQ(count_lines("warning all: a not running: nothing to hook"), 1u) << log_text.str();
  EXPECT_EQ(count_lines("warning all: b not running: attach failed"), 1u) << log_text.str();
  EXPECT_EQ(count_lines("warning all: zz not running: no such module in this build"), 1u);
  EXPECT_EQ(count_lines("info all: capture started (c; not running: a, b, zz)"), 1u)
      << log_text.str();
  EXPECT_EQ(m->target_report(), nlohmann::json::parse(R"([{"module":"a","reason":"nothing to hook"},
                                      {"module":"b","reason":"attach failed"},
                                      {"module":"c","path":"/lib/libc.so","version":"1.0"},
                                      {"module":"zz","reason":"no such module in this build"}])"));
  // The part that failed at start released what it had acquired at once; c holds its own.
  EXPECT_EQ(ledger.calls["b"], (Calls{"init", "start", "stop", "close"}));
  EXPECT_EQ(ledger.held, 1);
  EXPECT_EQ(m->counter_values().events, 2u);
  m->close();
  EXPECT_EQ(ledger.calls["c"], (Calls{"init", "start", "run", "stop", "close"}));
  EXPECT_EQ(ledger.held, 0);
}

TEST_F(AllModuleTest, NoPartRunningIsAnError) {
  add_fakes();
  for (const char* p : {"a", "b", "c"}) ledger.script[p].fail_init = true;
  ModulePtr m = make();
  auto r = m->init(context(), config());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(),
            "all: no TLS module found anything to hook (a: nothing to hook; b: nothing to hook; "
            "c: nothing to hook)");
  EXPECT_EQ(m->state(), ModuleState::kError);
  m->close();

  for (const char* p : {"a", "b", "c"}) ledger.script[p] = Script{.fail_start = true};
  ModulePtr again = make();
  ASSERT_TRUE(again->init(context(), config()));
  auto run = again->run();
  ASSERT_FALSE(run);
  EXPECT_EQ(run.error().to_string(),
            "all: no TLS module could start (a: attach failed; b: attach failed; c: attach "
            "failed)");
  EXPECT_EQ(ledger.held, 0);
}

TEST_F(AllModuleTest, GlobalAndCaptureSettingsReachEveryPart) {
  add_fakes();
  auto c = config();
  c->global.pid = 77;
  c->global.uid = 1000;
  c->global.tsize = 64;
  c->global.hex = true;
  ModulePtr m = make();
  ASSERT_TRUE(m->init(context(), std::move(c)));
  for (const char* p : {"a", "b", "c"}) {
    const GlobalConfig& g = ledger.configs[p]->global;
    EXPECT_EQ(g.pid, 77u) << p;
    EXPECT_EQ(g.uid, 1000u) << p;
    EXPECT_EQ(g.tsize, 64u) << p;
    EXPECT_TRUE(g.hex) << p;
  }
  const auto& a = static_cast<const CaptureConfig&>(*ledger.configs["a"]);
  EXPECT_EQ(a.model, "text");
  EXPECT_EQ(a.keylogfile, "ecapture_all_key.log");  // the part's own default is replaced
  m->close();
}

TEST_F(AllModuleTest, KeylogModeWritesOneFileForEveryPartAndSkipsPartsWithoutKeys) {
  const std::string dir = ::testing::TempDir() + "all_keys_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  const std::string keylog = dir + "/keys.log";
  ::unlink(keylog.c_str());
  const std::string r1(64, '1'), r2(64, '2');
  ASSERT_TRUE(registry.add(make_entry<CaptureConfig>(
      "t1", {}, "", {}, "t1", [&] { return ModulePtr(new FakeTlsPart("t1", r1)); })));
  ASSERT_TRUE(registry.add(make_entry<CaptureConfig>(
      "t2", {}, "", {}, "t2", [&] { return ModulePtr(new FakeTlsPart("t2", r2)); })));
  add_fake("c", false);
  add_fake("a");  // capture settings but no TLS layer: cannot share the key output
  auto cfg = config("keylog");
  cfg->keylogfile = keylog;
  ModulePtr m = make({"t1", "c", "t2", "a"});
  ASSERT_TRUE(m->init(context(), std::move(cfg)));
  ASSERT_TRUE(m->run());
  EXPECT_EQ(as_all(m).running_parts(), (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(count_lines("warning all: c not running: it captures no keys, so it has no -m "
                        "keylog (text mode only)"),
            1u)
      << log_text.str();
  EXPECT_EQ(count_lines("warning all: a not running: it cannot write to a shared key output"), 1u)
      << log_text.str();
  m->stop();
  m->close();
  std::ifstream in(keylog);
  std::stringstream text;
  text << in.rdbuf();
  const std::string secret(96, 'b');
  EXPECT_EQ(text.str(),
            "CLIENT_RANDOM " + r1 + " " + secret + "\nCLIENT_RANDOM " + r2 + " " + secret + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(keylog.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(m->counter_values().events, 2u);
  EXPECT_EQ(count_lines("info keys: TLS 1.2 master secret pid=4242 comm=client"), 2u);
  ::unlink(keylog.c_str());
  ::rmdir(dir.c_str());
}

TEST_F(AllModuleTest, AKeyLogNobodyWroteIsRemovedWhenNoPartStarts) {
  const std::string keylog = ::testing::TempDir() + "all_unused_" + std::to_string(::getpid());
  ::unlink(keylog.c_str());
  add_fake("c", false);
  auto cfg = config("keylog");
  cfg->keylogfile = keylog;
  ModulePtr m = make({"c"});
  ASSERT_FALSE(m->init(context(), std::move(cfg)));
  m->close();
  EXPECT_NE(::access(keylog.c_str(), F_OK), 0);
}

TEST_F(AllModuleTest, APartFailingWhileRunningEndsTheCapture) {
  add_fakes();
  ModulePtr m = make();
  ASSERT_TRUE(m->init(context(), config()));
  ASSERT_TRUE(m->run());
  ASSERT_TRUE(ledger.contexts["b"].on_error);
  ledger.contexts["b"].on_error(Error{"poll failed", EBADF});
  EXPECT_EQ(errors, (std::vector<std::string>{"b: poll failed: Bad file descriptor"}));
  EXPECT_EQ(m->state(), ModuleState::kError);
  m->close();
  EXPECT_EQ(ledger.held, 0);
}

TEST_F(AllModuleTest, PerLibraryFlagsAreRefused) {
  struct Case {
    std::string AllConfig::*member;
    const char* cli_error;
    const char* json;
  };
  const Case cases[] = {
      {&AllConfig::libssl,
       "--libssl: `ecapture all` hooks every TLS library it finds and takes no path or version "
       "for one; to capture one target use ecapture tls --libssl PATH",
       "opensslpath"},
      {&AllConfig::elfpath,
       "--elfpath: `ecapture all` hooks every TLS library it finds and takes no path or version "
       "for one; to capture one target use ecapture gotls -e PATH",
       "elf_path"},
      {&AllConfig::gnutls,
       "--gnutls: `ecapture all` hooks every TLS library it finds and takes no path or version "
       "for one; to capture one target use ecapture gnutls --gnutls PATH",
       "gnutlspath"},
      {&AllConfig::nspr,
       "--nspr: `ecapture all` hooks every TLS library it finds and takes no path or version for "
       "one; to capture one target use ecapture nss --nspr PATH",
       "nspr_path"},
      {&AllConfig::ssl_version,
       "--ssl_version: `ecapture all` hooks every TLS library it finds and takes no path or "
       "version for one; to capture one target use ecapture tls|gnutls --ssl_version VERSION",
       "sslversion"},
  };
  for (const Case& c : cases) {
    AllConfig cfg;
    cfg.*c.member = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
    auto v = cfg.validate();
    ASSERT_FALSE(v) << c.json;
    EXPECT_EQ(v.error().to_string(), c.cli_error);
    auto j = json_config("all", {{c.json, "/bin/sh"}});
    ASSERT_FALSE(j) << c.json;
    EXPECT_EQ(j.error().to_string(),
              fmt::format("field '{}': the all module hooks every TLS library it finds and takes "
                          "no path or version for one; POST to that library's own endpoint "
                          "instead",
                          c.json));
  }
  auto ok =
      json_config("all", {{"capturemode", "keylog"}, {"keylogfile", "/tmp/k.log"}, {"pid", 5}});
  ASSERT_TRUE(ok) << ok.error().to_string();
  const auto& a = static_cast<const AllConfig&>(**ok);
  EXPECT_EQ(a.model, "keylog");
  EXPECT_EQ(a.keylogfile, "/tmp/k.log");
  EXPECT_EQ(a.global.pid, 5u);
  EXPECT_TRUE(a.validate());
  EXPECT_EQ(json_config("all", {{"capturemode", "bogus"}}).error().to_string(),
            json_config("tls", {{"capturemode", "bogus"}}).error().to_string());
}

TEST_F(AllModuleTest, TheBuiltinEntryRunsTheFourTlsModules) {
  EXPECT_EQ(all::default_parts(), (std::vector<std::string>{"tls", "gotls", "gnutls", "nss"}));
  const ModuleInfo* e = builtin_registry().find("all");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->api_paths, (std::vector<std::string>{"/all"}));
  EXPECT_EQ(e->module_type, "all");
  for (const auto& p : all::default_parts()) EXPECT_NE(builtin_registry().find(p), nullptr) << p;
}

}  // namespace
}  // namespace ecapture
