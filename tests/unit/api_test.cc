// HTTP configuration API: JSON → config (field names, errors naming the field, per_cpu_map_size),
// endpoint → module, listen address and token rules, request handling against a Runner with fake
// modules (reload, 503 during a reload, restore after a failed reload), and the HTTP server.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <thread>

#include "api/api_handler.h"
#include "api/api_server.h"
#include "api/listen_address.h"
#include "core/cgroup.h"
#include "core/config_json.h"
#include "core/registry.h"
#include "core/runner.h"
#include "modules/all/all_module.h"
#include "modules/mysqld/mysqld_config.h"
#include "modules/openssl/openssl_config.h"
#include "modules/postgres/postgres_config.h"
#include "modules/shell/shell_config.h"
#include "registry_json.h"

namespace ecapture {
namespace {

using nlohmann::json;

const uint64_t kPage = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));

std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// --- JSON → tls config ---------------------------------------------------------------------------

class TlsJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/ecap-api-test-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    lib = path;
  }
  void TearDown() override { std::remove(lib.c_str()); }

  Result<std::unique_ptr<ModuleConfig>> parse(const json& j, const GlobalConfig& d = {}) {
    return builtin_registry().find("tls")->config_from_json(j, d);
  }
  std::string error_of(const json& j, const GlobalConfig& d = {}) {
    auto r = parse(j, d);
    return r ? std::string("(no error)") : r.error().to_string();
  }
  std::string lib;
};

TEST_F(TlsJsonTest, MapsEveryEcaptureFieldName) {
  json j = {{"opensslpath", lib},        {"capturemode", "text"},   {"keylogfile", "/tmp/k.log"},
            {"pcapfile", "/tmp/p.pcapng"}, {"ifname", "lo"},          {"pcapfilter", ""},
            {"sslversion", "openssl 3.0.0"}, {"pid", 4242},           {"uid", 1000},
            {"debug", true},             {"is_hex", true},          {"btf_mode", 1},
            {"per_cpu_map_size", 8388608}, {"truncate_size", 256},   {"isboringssl", true},
            {"is_android", false},       {"masterhookfuncs", json::array()}, {"listen", "x"}};
  auto r = parse(j);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& c = static_cast<const openssl::OpenSslConfig&>(**r);
  EXPECT_EQ(c.libssl, lib);
  EXPECT_EQ(c.model, "text");
  EXPECT_EQ(c.keylogfile, "/tmp/k.log");
  EXPECT_EQ(c.pcapfile, "/tmp/p.pcapng");
  EXPECT_EQ(c.ifname, "lo");
  EXPECT_EQ(c.ssl_version, "openssl 3.0.0");
  EXPECT_EQ(c.global.pid, 4242u);
  EXPECT_EQ(c.global.uid, 1000u);
  EXPECT_TRUE(c.global.debug);
  EXPECT_TRUE(c.global.hex);
  EXPECT_EQ(c.global.btf, 1);
  EXPECT_EQ(c.global.mapsize, 8388608u / kPage);
  EXPECT_EQ(c.global.tsize, 256u);
  EXPECT_TRUE(c.validate());
  // What /status shows can be posted back.
  auto again = parse(c.to_json());
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ((*again)->to_json(), c.to_json());
}

TEST_F(TlsJsonTest, LeftOutFieldsTakeTheCommandLineDefaults) {
  GlobalConfig d;
  d.pid = 77;
  d.hex = true;
  d.mapsize = 512;
  auto r = parse(json::object(), d);
  ASSERT_TRUE(r);
  const auto& c = static_cast<const openssl::OpenSslConfig&>(**r);
  EXPECT_EQ(c.global.pid, 77u);
  EXPECT_TRUE(c.global.hex);
  EXPECT_EQ(c.global.mapsize, 512u);
  EXPECT_EQ(c.libssl, "");
  EXPECT_EQ(c.model, "text");
  EXPECT_EQ(c.keylogfile, "ecapture_openssl_key.log");
}

TEST_F(TlsJsonTest, PerCpuMapSizeIsBytesRoundedUpToPages) {
  EXPECT_EQ(bytes_to_pages(8388608, 4096), 2048u);
  EXPECT_EQ(bytes_to_pages(4096, 4096), 1u);
  EXPECT_EQ(bytes_to_pages(4097, 4096), 2u);
  EXPECT_EQ(bytes_to_pages(1, 4096), 1u);
  auto r = parse({{"per_cpu_map_size", kPage + 1}});
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->global.mapsize, 2u);
  auto pages = parse({{"map_size", 64}});
  ASSERT_TRUE(pages);
  EXPECT_EQ((*pages)->global.mapsize, 64u);
  EXPECT_EQ(error_of({{"per_cpu_map_size", 0}}),
            fmt::format("field 'per_cpu_map_size': 0 bytes is out of range (1..{} bytes per CPU)",
                        kPage << 20));
  EXPECT_EQ(error_of({{"per_cpu_map_size", 4096}, {"map_size", 1}}),
            "fields 'per_cpu_map_size' (bytes) and 'map_size' (pages) both given: give one");
}

TEST_F(TlsJsonTest, ErrorsNameTheField) {
  EXPECT_EQ(error_of({{"nosuch", 1}}),
            "unknown field 'nosuch': not a configuration field of this module");
  EXPECT_EQ(error_of({{"pid", "12"}}),
            "field 'pid': expected a non-negative integer, got a string (\"12\")");
  EXPECT_EQ(error_of({{"pid", -1}}),
            "field 'pid': expected a non-negative integer, got an integer (-1)");
  EXPECT_EQ(error_of({{"pid", 1.5}}),
            "field 'pid': expected a non-negative integer, got a fractional number (1.5)");
  EXPECT_EQ(error_of({{"pid", 2147483648u}}),
            "field 'pid': 2147483648 is out of range (at most 2147483647)");
  EXPECT_EQ(error_of({{"is_hex", 1}}),
            "field 'is_hex': expected true or false, got an integer (1)");
  EXPECT_EQ(error_of({{"opensslpath", 5}}),
            "field 'opensslpath': expected a string, got an integer (5)");
  EXPECT_EQ(error_of({{"capturemode", "bogus"}}),
            "field 'capturemode': invalid value 'bogus': allowed values are text, keylog (key), "
            "pcap (pcapng)");
  EXPECT_EQ(error_of({{"opensslpath", "/nonexistent/libssl.so.3"}}),
            "field 'opensslpath': cannot use /nonexistent/libssl.so.3: No such file or directory");
  EXPECT_EQ(error_of({{"opensslpath", "/tmp"}}),
            "field 'opensslpath': /tmp is not a regular file");
  EXPECT_EQ(error_of({{"btf_mode", 3}}),
            "field 'btf_mode': 3 is not allowed: 0 (auto), 1 (CO-RE), 2 (non-CO-RE)");
  EXPECT_NE(error_of({{"btf_mode", 2}}).find("field 'btf_mode': 2 (non-CO-RE bytecode) is not "
                                              "shipped"), std::string::npos);
  EXPECT_EQ(error_of({{"btf_mode", 256}}),
            "field 'btf_mode': 256 is out of range (at most 255)");
  EXPECT_EQ(error_of({{"is_android", true}}),
            "field 'is_android': not supported by this build (only its empty/zero value is "
            "accepted, got true)");
  EXPECT_EQ(error_of({{"cgroup_path", "/nonexistent/ecap-cgroup"}}),
            "field 'cgroup_path': /nonexistent/ecap-cgroup: no such directory (give a cgroup v2 "
            "directory: one under " + cgroup2_mount_point() + ")");
  EXPECT_EQ(error_of({{"cgroup_path", "/tmp"}}),
            "field 'cgroup_path': /tmp: not a cgroup v2 directory (it is not on a cgroup2 file "
            "system; give one under " + cgroup2_mount_point() + ")");
  GlobalConfig d;
  d.logaddr = "/tmp/a.log";
  EXPECT_TRUE(parse({{"logger_addr", "/tmp/a.log"}}, d));
  EXPECT_TRUE(parse({{"logger_addr", ""}}, d));
  EXPECT_EQ(error_of({{"logger_addr", "/tmp/b.log"}}, d),
            "field 'logger_addr': the runtime log destination cannot change on a reload (it is "
            "'/tmp/a.log'; restart ecapture with -l to change it)");
}

TEST_F(TlsJsonTest, NullMeansLeftOut) {
  GlobalConfig d;
  d.pid = 9;
  auto r = parse({{"pid", nullptr}, {"opensslpath", nullptr}}, d);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->global.pid, 9u);
}

TEST_F(TlsJsonTest, NamesAreCaseInsensitiveLikeGo) {
  auto r = parse({{"PID", 5}, {"OpenSSLPath", lib}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)->global.pid, 5u);
  EXPECT_EQ(error_of({{"pid", 5}, {"Pid", 6}}),
            "field 'pid' is given twice (field names are case-insensitive)");
}

// --- JSON → the other modules' configs ----------------------------------------------------------

TEST(ModuleJsonTest, BashAndZsh) {
  GlobalConfig d;
  auto b = json_config("bash", 
      {{"bashpath", "/bin/sh"}, {"readline", ""}, {"ErrNo", 1}, {"ElfType", 0}, {"uid", 3}}, d);
  ASSERT_TRUE(b) << b.error().to_string();
  const auto& bc = static_cast<const shell::BashConfig&>(**b);
  EXPECT_EQ(bc.bash, "/bin/sh");
  EXPECT_EQ(bc.errnumber, std::optional<int>(1));
  EXPECT_EQ(bc.global.uid, 3u);
  // eCapture's default 128 means every command; ours is errnumber (null: every command).
  auto all = json_config("bash", {{"errno", 128}}, d);
  ASSERT_TRUE(all);
  EXPECT_EQ(static_cast<const shell::BashConfig&>(**all).errnumber, std::nullopt);
  auto exact = json_config("bash", {{"errnumber", 128}}, d);
  ASSERT_TRUE(exact);
  EXPECT_EQ(static_cast<const shell::BashConfig&>(**exact).errnumber, std::optional<int>(128));
  // What /status shows for bash can be posted back.
  auto back = json_config("bash", bc.to_json(), d);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ((*back)->to_json(), bc.to_json());
  EXPECT_EQ(json_config("bash", {{"errno", 256}}, d).error().to_string(),
            "field 'errno': 256 is out of range (at most 255)");
  EXPECT_EQ(json_config("bash", {{"bashpath", "/nonexistent/bash"}}, d)
                .error().to_string(),
            "field 'bashpath': cannot use /nonexistent/bash: No such file or directory");
  EXPECT_EQ(json_config("bash", {{"zshpath", "/bin/sh"}}, d).error().to_string(),
            "unknown field 'zshpath': not a configuration field of this module");
  auto z = json_config("zsh", {{"zshpath", "/bin/sh"}, {"errnumber", 0}}, d);
  ASSERT_TRUE(z) << z.error().to_string();
  EXPECT_EQ(static_cast<const shell::ZshConfig&>(**z).zsh, "/bin/sh");
  EXPECT_EQ(static_cast<const shell::ZshConfig&>(**z).errnumber, std::optional<int>(0));
}

TEST(ModuleJsonTest, MysqldAndPostgres) {
  GlobalConfig d;
  auto m = json_config("mysqld", {{"mysqldPath", "/bin/sh"}, {"offset", 4096}}, d);
  ASSERT_TRUE(m) << m.error().to_string();
  const auto& mc = static_cast<const mysqld::MysqldConfig&>(**m);
  EXPECT_EQ(mc.mysqld, "/bin/sh");
  EXPECT_EQ(mc.offset, 4096u);
  auto legacy = json_config("mysqld", {{"MysqlPath", "/bin/sh"}, {"FuncName", "f"}}, d);
  ASSERT_TRUE(legacy) << legacy.error().to_string();
  EXPECT_EQ(static_cast<const mysqld::MysqldConfig&>(**legacy).funcname, "f");
  EXPECT_EQ(json_config("mysqld", {{"offset", 1}, {"funcName", "f"}}, d).error().to_string(),
            "fields 'offset' and 'funcname' both name the function to hook: give one");
  EXPECT_EQ(json_config("mysqld", {{"offset", "0x10"}}, d).error().to_string(),
            "field 'offset': expected a non-negative integer, got a string (\"0x10\")");
  auto back = json_config("mysqld", mc.to_json(), d);
  ASSERT_TRUE(back) << back.error().to_string();
  auto p = json_config("postgres", {{"PostgresPath", "/bin/sh"}, {"funcName", "g"}}, d);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(static_cast<const postgres::PostgresConfig&>(**p).postgres, "/bin/sh");
  EXPECT_EQ(static_cast<const postgres::PostgresConfig&>(**p).funcname, "g");
  EXPECT_EQ(json_config("postgres", {{"postgrespath", "/nope"}}, d).error().to_string(),
            "field 'postgrespath': cannot use /nope: No such file or directory");
}

TEST(ModuleJsonTest, EveryBuiltinModuleIsConfigurable) {
  for (const auto& m : builtin_registry().modules()) {
    EXPECT_FALSE(m.api_paths.empty()) << m.name;
    EXPECT_TRUE(m.make_config) << m.name;
  }
}

// --- endpoints, listen address, token ------------------------------------------------------------

TEST(ApiEndpointTest, EveryEcaptureEndpointMapsToItsModule) {
  const std::vector<std::tuple<std::string, std::string, std::string>> want = {
      {"/tls", "tls", "openssl"},
      {"/openssl", "tls", "openssl"},
      {"/boringssl", "tls", "openssl"},
      {"/gotls", "gotls", "gotls"},
      {"/gnutls", "gnutls", "gnutls"},
      {"/nss", "nss", "nspr"},
      {"/nspr", "nss", "nspr"},
      {"/bash", "bash", "bash"},
      {"/zsh", "zsh", "zsh"},
      {"/mysqld", "mysqld", "mysql"},
      {"/postgres", "postgres", "postgres"},
      {"/postgress", "postgres", "postgres"},
      {"/all", "all", "all"}};
  const ModuleRegistry& r = builtin_registry();
  size_t paths = 0;
  for (const auto& m : r.modules()) paths += m.api_paths.size();
  ASSERT_EQ(paths, want.size());
  for (const auto& [path, module, type] : want) {
    const ModuleInfo* e = r.find_by_path(path);
    ASSERT_NE(e, nullptr) << path;
    EXPECT_EQ(e->name, module) << path;
    EXPECT_EQ(e->module_type, type) << path;
  }
  EXPECT_EQ(r.find_by_path("/status"), nullptr);
  EXPECT_EQ(r.find_by_path("/TLS"), nullptr);
  EXPECT_EQ(api::module_type_of(r, "tls"), "openssl");
  EXPECT_EQ(api::module_type_of(r, "mysqld"), "mysql");
}

TEST(ListenAddressTest, ParsesAndClassifies) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
    bool loopback;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1:28256", "127.0.0.1", 28256, true},
                                         {"127.9.8.7:1", "127.9.8.7", 1, true},
                                         {"localhost:80", "localhost", 80, true},
                                         {"[::1]:8080", "::1", 8080, true},
                                         {"0.0.0.0:28256", "0.0.0.0", 28256, false},
                                         {":28256", "0.0.0.0", 28256, false},
                                         {"10.1.2.3:443", "10.1.2.3", 443, false},
                                         {"[::]:1", "::", 1, false},
                                         {"example.com:80", "example.com", 80, false}}) {
    auto a = api::parse_listen_address(c.text);
    ASSERT_TRUE(a) << c.text << ": " << a.error().to_string();
    EXPECT_EQ(a->host, c.host) << c.text;
    EXPECT_EQ(a->port, c.port) << c.text;
    EXPECT_EQ(a->loopback, c.loopback) << c.text;
  }
  EXPECT_EQ(api::parse_listen_address("127.0.0.1").error().to_string(),
            "invalid --listen address '127.0.0.1': expected HOST:PORT (e.g. 127.0.0.1:28256)");
  for (const char* bad : {"127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "::1:80", "[::1]80",
                          "[::1"}) {
    EXPECT_FALSE(api::parse_listen_address(bad)) << bad;
  }
}

TEST(ListenAddressTest, NonLoopbackNeedsAToken) {
  auto loop = *api::parse_listen_address("127.0.0.1:1");
  auto any = *api::parse_listen_address("0.0.0.0:28256");
  EXPECT_TRUE(api::check_listen_policy(loop, ""));
  EXPECT_TRUE(api::check_listen_policy(any, "s3cret"));
  auto refused = api::check_listen_policy(any, "");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().to_string(),
            "--listen 0.0.0.0:28256 is not a loopback address: the configuration API would be "
            "open to the network; give a token with --listen-token TOKEN (or "
            "ECAPTURE_LISTEN_TOKEN) that clients send as 'Authorization: Bearer TOKEN', or "
            "listen on 127.0.0.1");
  EXPECT_TRUE(api::bearer_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(api::bearer_matches("bearer s3cret", "s3cret"));
  EXPECT_FALSE(api::bearer_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(api::bearer_matches("Bearer s3cretX", "s3cret"));
  EXPECT_FALSE(api::bearer_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(api::bearer_matches("", "s3cret"));
}

// --- request handling against a Runner with fake modules ----------------------------------------

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool blocked = false;  // a module's start is waiting
  bool open = false;
  void wait_blocked() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return blocked; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

struct FakeApiConfig : ConfigOf<FakeApiConfig> {
  uint64_t tag = 0;
  bool fail_start = false;
  bool block = false;
  const FieldTable& fields() const override {
    static const FieldTable t = FieldTableBuilder<FakeApiConfig>()
                                    .number(&FakeApiConfig::tag, {.json = {"tag"}})
                                    .flag(&FakeApiConfig::fail_start, {.json = {"fail_start"}})
                                    .flag(&FakeApiConfig::block, {.json = {"block"}})
                                    .build();
    return t;
  }
};

struct Ledger {
  std::mutex mu;
  std::vector<std::string> started;  // "name:tag"
  int live = 0;                      // started and not yet closed
  Gate gate;
};

class FakeApiModule final : public Module {
 public:
  FakeApiModule(std::string name, Ledger* l) : Module(std::move(name)), l_(l) {}

 protected:
  Result<void> on_init() override { return {}; }
  Result<void> on_start() override {
    const auto& c = config_as<FakeApiConfig>();
    if (c.block) {
      std::unique_lock lock(l_->gate.mu);
      l_->gate.blocked = true;
      l_->gate.cv.notify_all();
      l_->gate.cv.wait(lock, [&] { return l_->gate.open; });
    }
    if (c.fail_start) return make_error("attach failed: no such symbol");
    std::lock_guard lock(l_->mu);
    l_->started.push_back(fmt::format("{}:{}", name(), c.tag));
    l_->live++;
    held_ = true;
    return {};
  }
  Result<void> on_run() override { return {}; }
  void on_close() override {
    if (!held_) return;
    std::lock_guard lock(l_->mu);
    l_->live--;
    held_ = false;
  }

 private:
  Ledger* l_;
  bool held_ = false;
};

std::unique_ptr<ModuleConfig> fake_cfg(uint64_t tag) {
  auto c = std::make_unique<FakeApiConfig>();
  c->tag = tag;
  c->global.pid = 11;
  return c;
}

class ApiHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto make = [this](const char* name) {
      return [this, name] { return ModulePtr(new FakeApiModule(name, &ledger)); };
    };
    ASSERT_TRUE(registry.add(make_entry<FakeApiConfig>(
        "tls", {"openssl"}, "", {"/tls", "/openssl", "/boringssl"}, "openssl", make("tls"))));
    ASSERT_TRUE(
        registry.add(make_entry<FakeApiConfig>("bash", {}, "", {"/bash"}, "bash", make("bash"))));
    defaults.pid = 11;
    runner = std::make_unique<Runner>(registry, nullptr, quiet_logger());
    handler = std::make_unique<api::ApiHandler>(*runner, registry, defaults, quiet_logger());
  }
  void TearDown() override {
    if (waiter.joinable()) {
      runner->request_stop();
      waiter.join();
    }
    EXPECT_EQ(ledger.live, 0);
  }
  void start(uint64_t tag = 1) {
    ASSERT_TRUE(runner->start("tls", fake_cfg(tag)));
    waiter = std::thread([this] { wait_code = runner->wait(); });
  }
  std::vector<std::string> started() {
    std::lock_guard lock(ledger.mu);
    return ledger.started;
  }
  void expect_body(const api::ApiResponse& r, int http, int code, const std::string& type,
                   const std::string& msg) {
    EXPECT_EQ(r.http_status, http) << r.body.dump();
    EXPECT_EQ(r.body["code"], code) << r.body.dump();
    EXPECT_EQ(r.body["module_type"], type) << r.body.dump();
    EXPECT_EQ(r.body["msg"], msg) << r.body.dump();
  }

  Ledger ledger;
  ModuleRegistry registry;
  GlobalConfig defaults;
  std::unique_ptr<Runner> runner;
  std::unique_ptr<api::ApiHandler> handler;
  std::thread waiter;
  int wait_code = -1;
};

TEST_F(ApiHandlerTest, BadRequestsChangeNothing) {
  start(1);
  expect_body(handler->post_config("/nosuch", "{}"), 404, 3, "",
              "no endpoint POST /nosuch: POST one of /tls, /openssl, /boringssl, /bash with a "
              "JSON configuration, or GET /status, /healthz, /metrics");
  // A path of a module this registry does not have is no endpoint either.
  expect_body(handler->post_config("/gotls", "{}"), 404, 3, "",
              "no endpoint POST /gotls: POST one of /tls, /openssl, /boringssl, /bash with a "
              "JSON configuration, or GET /status, /healthz, /metrics");
  auto bad_json = handler->post_config("/tls", "{\"pid\": ");
  EXPECT_EQ(bad_json.http_status, 400);
  EXPECT_EQ(bad_json.body["code"], 4);
  EXPECT_EQ(bad_json.body["msg"].get<std::string>().rfind("invalid JSON body: ", 0), 0u)
      << bad_json.body.dump();
  expect_body(handler->post_config("/tls", "[1]"), 400, 4, "openssl",
              "the body must be a JSON object with module tls's configuration, got array");
  expect_body(handler->post_config("/tls", R"({"pid": "x"})"), 400, 5, "openssl",
              "field 'pid': expected a non-negative integer, got a string (\"x\")");
  expect_body(handler->post_config("/openssl", R"({"bogus": 1})"), 400, 5, "openssl",
              "unknown field 'bogus': not a configuration field of this module");
  auto invalid = handler->post_config("/tls", R"({"btf_file": "/nonexistent/btf"})");
  EXPECT_EQ(invalid.http_status, 400);
  EXPECT_EQ(invalid.body["code"], 5);
  EXPECT_EQ(invalid.body["msg"].get<std::string>().rfind(
                "invalid configuration for module tls: --btf-file /nonexistent/btf: no such "
                "file", 0), 0u) << invalid.body.dump();
  EXPECT_TRUE(invalid.body["data"].is_null());
  // The running module was never touched.
  EXPECT_EQ(started(), std::vector<std::string>{"tls:1"});
  auto st = runner->status();
  EXPECT_EQ(st.module, "tls");
  EXPECT_EQ(st.state, ModuleState::kRunning);
  EXPECT_EQ(st.reloads, 0u);
}

TEST_F(ApiHandlerTest, ReloadSwitchesModuleAndStatusShowsIt) {
  start(1);
  int applied_pid = -1;
  handler->set_on_applied([&](const ModuleConfig& c) { applied_pid = int(c.global.pid); });
  auto r = handler->post_config("/bash", R"({"tag": 2, "pid": 4242})");
  expect_body(r, 200, 0, "bash", "module bash is running with the new configuration");
  EXPECT_EQ(r.body["data"]["module"], "bash");
  EXPECT_EQ(applied_pid, 4242);
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "bash:2"}));
  auto s = handler->status();
  EXPECT_EQ(s.http_status, 200);
  EXPECT_EQ(s.body["code"], 0);
  EXPECT_EQ(s.body["module_type"], "bash");
  const json& d = s.body["data"];
  EXPECT_EQ(d["module"], "bash");
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(d["reloads"], 1);
  EXPECT_EQ(d["reload_in_progress"], false);
  EXPECT_EQ(d["config"]["pid"], 4242);
  EXPECT_EQ(d["config"]["tag"], 2);
  EXPECT_EQ(d["counters"], (json{{"events", 0},
                                 {"bytes", 0},
                                 {"lost", 0},
                                 {"decode_errors", 0},
                                 {"map_update_failures", 0},
                                 {"targets", 0}}));
  EXPECT_EQ(d["error"], "");
  EXPECT_GE(d["uptime_seconds"].get<double>(), 0.0);
  // Alias endpoint of the first module; a left-out pid takes the command line's (11).
  expect_body(handler->post_config("/boringssl", R"({"tag": 3})"), 200, 0, "openssl",
              "module tls is running with the new configuration");
  EXPECT_EQ(handler->status().body["data"]["config"]["pid"], 11);
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "bash:2", "tls:3"}));
  EXPECT_EQ(ledger.live, 1);
  auto h = handler->healthz();
  EXPECT_EQ(h.http_status, 200);
  EXPECT_EQ(h.body["data"]["state"], "running");
}

TEST_F(ApiHandlerTest, AllReloadsLikeAnyModuleWithItsParts) {
  ASSERT_TRUE(registry.add(make_entry<all::AllConfig>("all", {}, "", {"/all"}, "all", [this] {
    return ModulePtr(new all::AllModule(registry, {"tls", "bash"}));
  })));
  start(1);
  expect_body(handler->post_config("/all", R"({"capturemode": "text", "pid": 4242})"), 200, 0,
              "all", "module all is running with the new configuration");
  // Both parts run, with their defaults (tag 0) and the global settings of `all`.
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "tls:0", "bash:0"}));
  EXPECT_EQ(ledger.live, 2);
  const json d = handler->status().body["data"];
  EXPECT_EQ(d["module"], "all");
  EXPECT_EQ(d["state"], "running");
  EXPECT_EQ(d["config"]["pid"], 4242);
  EXPECT_EQ(d["config"]["capturemode"], "text");
  EXPECT_EQ(d["target_report"], json::array());
  expect_body(handler->post_config("/all", R"({"gnutlspath": "/bin/sh"})"), 400, 5, "all",
              "field 'gnutlspath': the all module hooks every TLS library it finds and takes no "
              "path or version for one; POST to that library's own endpoint instead");
  expect_body(handler->post_config("/tls", R"({"tag": 5})"), 200, 0, "openssl",
              "module tls is running with the new configuration");
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "tls:0", "bash:0", "tls:5"}));
  EXPECT_EQ(ledger.live, 1);
}

TEST_F(ApiHandlerTest, FailedStartRestoresThePreviousModule) {
  start(1);
  auto r = handler->post_config("/bash", R"({"tag": 2, "fail_start": true})");
  expect_body(r, 400, 5, "bash",
              "module bash did not start: attach failed: no such symbol; the previous "
              "configuration (module tls) is running again");
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "tls:1"}));
  auto st = runner->status();
  EXPECT_EQ(st.module, "tls");
  EXPECT_EQ(st.state, ModuleState::kRunning);
  EXPECT_EQ(st.config["tag"], 1);
  EXPECT_EQ(ledger.live, 1);
}

TEST_F(ApiHandlerTest, RequestDuringAReloadGets503) {
  start(1);
  api::ApiResponse first;
  std::thread slow([&] { first = handler->post_config("/bash", R"({"tag": 2, "block": true})"); });
  ledger.gate.wait_blocked();
  expect_body(handler->post_config("/tls", R"({"tag": 3})"), 503, 6, "openssl",
              "another reload is in progress: retry when it has finished");
  // Invalid requests are still answered as such (validation comes first).
  EXPECT_EQ(handler->post_config("/tls", R"({"tag": "x"})").http_status, 400);
  auto s = handler->status();
  EXPECT_EQ(s.body["data"]["reload_in_progress"], true);
  EXPECT_EQ(handler->healthz().http_status, 200);
  ledger.gate.release();
  slow.join();
  expect_body(first, 200, 0, "bash", "module bash is running with the new configuration");
  EXPECT_EQ(started(), (std::vector<std::string>{"tls:1", "bash:2"}));
  // Serialised, not refused, once the reload is over.
  expect_body(handler->post_config("/tls", R"({"tag": 4})"), 200, 0, "openssl",
              "module tls is running with the new configuration");
  EXPECT_EQ(runner->status().reloads, 2u);
}

TEST_F(ApiHandlerTest, ShutDownReleasesAWaitingRequest) {
  ASSERT_TRUE(runner->start("tls", fake_cfg(1)));
  // No runner loop: the reload is never taken, as after the runner stopped.
  api::ApiResponse r;
  std::thread t([&] { r = handler->post_config("/bash", R"({"tag": 2})"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  handler->shut_down();
  t.join();
  expect_body(r, 503, 6, "bash", "ecapture is shutting down; the reload did not complete");
  expect_body(handler->post_config("/bash", "{}"), 503, 6, "bash", "ecapture is shutting down");
  runner.reset();  // closes the module
}

TEST_F(ApiHandlerTest, StatusIncludesOutputCounters) {
  start(1);
  EXPECT_FALSE(handler->status().body["data"].contains("output"));
  handler->set_output_counters([] { return json{{"messages", 7}, {"dropped_events", 2}}; });
  EXPECT_EQ(handler->status().body["data"]["output"],
            (json{{"messages", 7}, {"dropped_events", 2}}));
}

TEST_F(ApiHandlerTest, MetricsHaveRunnerFamiliesSourcesAndProcess) {
  start(1);
  handler->add_metrics_source([](MetricsText& m) {
    m.counter("ecapture_test_source_total", "A source's family.", uint64_t{5});
  });
  const std::string text = handler->metrics();
  const auto at = [&text](const std::string& s) { return text.find(s); };
  EXPECT_NE(at("# TYPE ecapture_events_total counter\necapture_events_total{module=\"tls\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(at("ecapture_module_state{module=\"tls\",state=\"running\"} 1\n"),
            std::string::npos);
  EXPECT_NE(at("ecapture_module_state{module=\"tls\",state=\"error\"} 0\n"),
            std::string::npos);
  EXPECT_NE(at("ecapture_reloads_total 0\n"), std::string::npos);
  // Sources come after the runner's families and before the process_* ones.
  EXPECT_NE(at("ecapture_decode_errors_total{module=\"tls\"} 0\n"), std::string::npos);
  EXPECT_NE(at("ecapture_map_update_failures_total{module=\"tls\"} 0\n"), std::string::npos);
  EXPECT_LT(at("ecapture_reloads_total"), at("ecapture_test_source_total 5\n"));
  EXPECT_LT(at("ecapture_test_source_total 5\n"),
            at("# TYPE process_cpu_seconds_total counter"));
  EXPECT_NE(at("# TYPE process_resident_memory_bytes gauge"), std::string::npos);
}

TEST_F(ApiHandlerTest, HealthzWithoutAModuleIs503) {
  auto h = handler->healthz();
  EXPECT_EQ(h.http_status, 503);
  EXPECT_EQ(h.body["msg"], "no module is running (module '' is closed)");
}

// --- the HTTP server on 127.0.0.1 ----------------------------------------------------------------

TEST_F(ApiHandlerTest, HttpServerRoutesAndChecksTheToken) {
  start(1);
  api::ApiServer server(quiet_logger());
  ASSERT_TRUE(server.bind(*api::parse_listen_address("127.0.0.1:0"), "s3cret"));
  server.serve(*handler);
  ASSERT_GT(server.port(), 0);
  httplib::Client cli("127.0.0.1", server.port());
  auto no_token = cli.Get("/status");
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401);
  EXPECT_EQ(json::parse(no_token->body)["code"], 1);
  EXPECT_EQ(no_token->get_header_value("WWW-Authenticate"), "Bearer");
  auto wrong = cli.Post("/bash", {{"Authorization", "Bearer nope"}}, R"({"tag": 2})",
                        "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(started(), std::vector<std::string>{"tls:1"});

  httplib::Headers auth{{"Authorization", "Bearer s3cret"}};
  auto ok = cli.Post("/bash", auth, R"({"tag": 2})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(ok->body)["msg"], "module bash is running with the new configuration");
  auto st = cli.Get("/status", auth);
  ASSERT_TRUE(st);
  EXPECT_EQ(json::parse(st->body)["data"]["module"], "bash");
  auto hz = cli.Get("/healthz", auth);
  ASSERT_TRUE(hz);
  EXPECT_EQ(hz->status, 200);
  auto missing = cli.Get("/nothing", auth);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  server.stop();
  server.stop();  // idempotent
  EXPECT_FALSE(cli.Get("/status", auth));
}

TEST_F(ApiHandlerTest, HttpServerWithoutTokenAndBusyPort) {
  start(1);
  api::ApiServer server(quiet_logger());
  ASSERT_TRUE(server.bind(*api::parse_listen_address("127.0.0.1:0"), ""));
  server.serve(*handler);
  httplib::Client cli("127.0.0.1", server.port());
  auto st = cli.Get("/status");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 200);
  api::ApiServer second(quiet_logger());
  auto busy = second.bind(
      *api::parse_listen_address(fmt::format("127.0.0.1:{}", server.port())), "");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().to_string(),
            fmt::format("cannot listen on 127.0.0.1:{} (--listen): Address already in use",
                        server.port()));
}

TEST(ApiServerTest, BoundButNeverServedStopsAndFreesThePort) {
  uint16_t port = 0;
  {
    api::ApiServer server(quiet_logger());
    ASSERT_TRUE(server.bind(*api::parse_listen_address("127.0.0.1:0"), ""));
    port = server.port();
  }  // destructor: stop() without serve()
  api::ApiServer again(quiet_logger());
  auto r = again.bind(*api::parse_listen_address(fmt::format("127.0.0.1:{}", port)), "");
  EXPECT_TRUE(r) << r.error().to_string();
}

}  // namespace
}  // namespace ecapture
