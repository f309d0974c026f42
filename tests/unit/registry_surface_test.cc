// A module's whole surface from one registry entry: a fake ninth module registered once appears as
// a CLI subcommand with its flags (and the global flags in its help), as an API endpoint that
// accepts its JSON, and with its settings in /status.
#include <gtest/gtest.h>

#include <spdlog/sinks/null_sink.h>

#include <thread>

#include "api/api_handler.h"
#include "cli/cli.h"
#include "core/registry.h"
#include "core/runner.h"

namespace ecapture {
namespace {

struct NinthConfig : ConfigOf<NinthConfig> {
  std::string target;
  uint64_t depth = 3;
  bool verbose = false;
  std::string words;
  const FieldTable& fields() const override {
    static const FieldTable t =
        FieldTableBuilder<NinthConfig>()
            .text(&NinthConfig::target,
                  {.flag = "-x,--target", .json = {"target_path", "targetpath"}, .help = "what"})
            .number(&NinthConfig::depth,
                    {.flag = "--depth", .json = {"depth"}, .help = "how deep", .max = 9})
            .flag(&NinthConfig::verbose, {.flag = "--verbose", .json = {"verbose"}})
            .text(&NinthConfig::words, {.flag = "expr", .json = {"expr"}, .positional = true})
            .check([](const NinthConfig& c) -> Result<void> {
              if (c.verbose && c.depth == 0) return make_error("--verbose needs --depth > 0");
              return {};
            })
            .build();
    return t;
  }
};

class NinthModule final : public Module {
 public:
  NinthModule() : Module("ninth") {}

 protected:
  Result<void> on_init() override { return {}; }
  Result<void> on_start() override { return {}; }
  Result<void> on_run() override { return {}; }
  void on_close() override {}
};

ModuleRegistry ninth_registry() {
  ModuleRegistry r;
  EXPECT_TRUE(r.add(make_entry<NinthConfig>("ninth", {"nine"}, "the ninth module", {"/ninth"},
                                            "ninth_type",
                                            [] { return ModulePtr(new NinthModule()); })));
  return r;
}

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

TEST(RegistrySurface, SubcommandWithItsFlagsAndTheGlobalOnes) {
  const ModuleRegistry r = ninth_registry();
  CLI::App app{"test"};
  GlobalConfig g;
  auto globals = [&g](CLI::App& a) {
    a.add_option_group("Global Flags")->add_option("-p,--pid", g.pid, "pid");
  };
  globals(app);
  auto commands = cli::add_module_commands(app, r, globals);
  ASSERT_EQ(commands.size(), 1u);
  const char* argv[] = {"ecapture", "nine",    "-x",  "/bin/true", "--depth", "7",
                        "--pid",    "42",      "tcp", "port",      "443"};
  app.parse(static_cast<int>(std::size(argv)), const_cast<char**>(argv));
  ASSERT_TRUE(commands[0].app->parsed());
  auto cfg = commands[0].make_config(g);
  const auto& c = static_cast<const NinthConfig&>(*cfg);
  EXPECT_EQ(c.target, "/bin/true");
  EXPECT_EQ(c.depth, 7u);
  EXPECT_EQ(c.words, "tcp port 443");
  EXPECT_EQ(c.global.pid, 42u);
  const std::string help = commands[0].app->help();
  EXPECT_NE(help.find("--target"), std::string::npos) << help;
  EXPECT_NE(help.find("Global Flags"), std::string::npos) << help;
  // The row's range is the CLI's check too.
  CLI::App app2{"test"};
  auto c2 = cli::add_module_commands(app2, r, {});
  const char* bad[] = {"ecapture", "ninth", "--depth", "10"};
  EXPECT_THROW(app2.parse(4, const_cast<char**>(bad)), CLI::ValidationError);
}

TEST(RegistrySurface, EndpointAcceptsItsJsonAndStatusShowsIt) {
  const ModuleRegistry r = ninth_registry();
  Runner runner(r, nullptr, quiet());
  GlobalConfig defaults;
  api::ApiHandler handler(runner, r, defaults, quiet());
  ASSERT_TRUE(runner.start("ninth", std::make_unique<NinthConfig>()));
  std::thread waiter([&] { runner.wait(); });

  auto bad = handler.post_config("/ninth", R"({"depth": 12})");
  EXPECT_EQ(bad.http_status, 400);
  EXPECT_EQ(bad.body["msg"], "field 'depth': 12 is out of range (at most 9)");
  auto both = handler.post_config("/ninth", R"({"target_path": "/a", "targetpath": "/b"})");
  EXPECT_EQ(both.body["msg"], "fields 'target_path' and 'targetpath' both given: give one");
  auto check = handler.post_config("/ninth", R"({"verbose": true, "depth": 0})");
  EXPECT_EQ(check.body["msg"], "invalid configuration for module ninth: --verbose needs --depth > 0");

  auto ok = handler.post_config("/ninth", R"({"targetpath": "/bin/true", "depth": 5, "expr": "x"})");
  ASSERT_EQ(ok.http_status, 200) << ok.body.dump();
  EXPECT_EQ(ok.body["module_type"], "ninth_type");
  auto st = handler.status();
  const auto& config = st.body["data"]["config"];
  EXPECT_EQ(config["target_path"], "/bin/true");
  EXPECT_EQ(config["depth"], 5);
  EXPECT_EQ(config["verbose"], false);
  EXPECT_EQ(config["expr"], "x");
  EXPECT_EQ(st.body["data"]["module"], "ninth");
  runner.request_stop();
  waiter.join();
}

}  // namespace
}  // namespace ecapture
