// Root command: global flags, dispatch, privilege check, signals and the runner.
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

#include "api/api_server.h"
#include "core/host_id.h"
#include "core/logging.h"
#include "core/registry.h"
#include "core/runner.h"
#include "core/version.h"
#include "output/outputs.h"
#include "output/text_sink.h"
#include "web/har_file.h"
#include "web/web_hub.h"

namespace ecapture::cli {
namespace {

int fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "ecapture: %s\n", message.c_str());
  return code;
}

constexpr const char* kGlobalGroup = "Global Flags";

void add_global_flags(CLI::App& app, GlobalConfig& g) {
  app.add_option("-p,--pid", g.pid, "capture only this process id (0: all)")->default_str("0");
  app.add_option("-u,--uid", g.uid, "capture only this user id (0: all)")->default_str("0");
  app.add_option("--cgroup_path", g.cgroup_path,
                 "capture only processes in this cgroup v2 directory and below it, e.g. "
                 "/sys/fs/cgroup/system.slice/docker-<id>.scope (default: all)");
  app.add_flag("-d,--debug", g.debug, "debug logging");
  app.add_flag("--hex", g.hex, "print payloads as a hex dump");
  app.add_option("-b,--btf", g.btf, "BTF mode: 0 auto, 1 CO-RE (2, non-CO-RE, is not shipped)")
      ->default_str("0");
  app.add_option("--btf-file", g.btf_file,
                 "BTF file for kernels without /sys/kernel/btf/vmlinux");
  app.add_option("--mapsize", g.mapsize, "event buffer size per CPU, in pages")
      ->default_str("1024");
  app.add_option("-t,--tsize", g.tsize, "show at most this many bytes per message (0: all)")
      ->default_str("0");
  app.add_option("-l,--logaddr", g.logaddr,
                 "also send runtime logs here: a file (appended), tcp://host:port or "
                 "ws://host:port/path (JSON lines)");
}

// Where captured events go (issue 4): eCapture's --eventaddr, --ecaptureq and rotation flags.
void add_output_flags(CLI::App& app, OutputConfig& o) {
  app.add_option("--eventaddr", o.eventaddr,
                 "send captured events here instead of stdout: a file, tcp://host:port, "
                 "ws://host:port/path, kafka://broker[,broker...]/topic or - (stdout); "
                 "repeatable");
  app.add_option("--kafka-opt", o.kafka_opts,
                 "librdkafka property for kafka:// sinks, key=value (e.g. compression.type=zstd, "
                 "security.protocol=ssl, queue.buffering.max.messages=10000); repeatable");
  app.add_option("--ecaptureq", o.ecaptureq,
                 "serve events and logs as eCaptureQ protobuf over WebSocket, e.g. "
                 "ws://127.0.0.1:28257/");
  app.add_option("--format", o.format, "event format: text, json or protobuf")
      ->default_str("text");
  app.add_option("--eventroratesize", o.rotate_mb,
                 "rotate the --eventaddr file when it reaches this many MB (1-65535)");
  app.add_option("--eventroratetime", o.rotate_seconds,
                 "rotate the --eventaddr file every this many seconds (1-65535)");
  app.add_flag("--raw", o.raw, "print every library call as it is (no HTTP reassembly)");
  app.add_option("--host-id", o.host_id,
                 "name this host gives its events (JSON host, protobuf LogEntry.host, Kafka "
                 "keys and headers); default: the hostname");
  app.add_option("--web-history", o.web_history,
                 "rows the web view at --listen keeps for pages that open later")
      ->default_str("10000")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}));
  app.add_option("--har", o.har, "write every HTTP exchange to this HAR 1.2 file on exit")
      ->each([&o](const std::string&) { o.har_given = true; });
}

// CAP_BPF (39) + CAP_PERFMON (38), or CAP_SYS_ADMIN (21), in the effective set.
bool has_bpf_privileges() {
  if (geteuid() == 0) return true;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
      auto has = [caps](int bit) { return (caps >> bit) & 1u; };
      return has(21) || (has(39) && has(38));
    }
  }
  return false;
}

// Everything the global flags are parsed into.
struct Globals {
  GlobalConfig global;
  OutputConfig output;
  std::string listen, listen_token;
};

void add_all_global_flags(CLI::App& app, Globals& g) {
  CLI::App& group = *app.add_option_group(kGlobalGroup);
  add_global_flags(static_cast<CLI::App&>(group), g.global);
  add_output_flags(static_cast<CLI::App&>(group), g.output);
  group.add_option("--listen", g.listen,
                   "serve the HTTP configuration API on this address, e.g. 127.0.0.1:28256 (off "
                   "by default)");
  group.add_option("--listen-token", g.listen_token,
                   "bearer token the configuration API requires (needed for a non-loopback "
                   "--listen)")
      ->envname("ECAPTURE_LISTEN_TOKEN");
}

std::string known_commands(const CLI::App& app) {
  std::string out;
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (!out.empty()) out += ", ";
    out += sub->get_name();
    for (const auto& a : sub->get_aliases()) out += " (" + a + ")";
  }
  return out;
}

}  // namespace

std::unique_ptr<ModuleConfig> Command::make_config(const GlobalConfig& g) const {
  std::unique_ptr<ModuleConfig> out = bound->clone();
  out->global = g;
  if (finish) finish(*out);
  return out;
}

std::vector<Command> add_module_commands(CLI::App& root, const ModuleRegistry& registry,
                                         const std::function<void(CLI::App&)>& add_globals) {
  std::vector<Command> commands;
  for (const ModuleInfo& m : registry.modules()) {
    Command c;
    c.module = &m;
    c.app = root.add_subcommand(m.name, m.help);
    for (const auto& alias : m.aliases) c.app->alias(alias);
    c.bound = m.make_config();
    c.finish = c.bound->fields().add_cli(*c.app, *c.bound);
    if (add_globals) add_globals(*c.app);
    commands.push_back(std::move(c));
  }
  return commands;
}

int run(int argc, char** argv) {
  CLI::App app{"ecapture: capture TLS plaintext, TLS keys, shell commands and SQL queries with "
               "eBPF, without CA certificates",
               "ecapture"};
  app.fallthrough();
  app.set_version_flag("--version", fmt::format("ecapture version: {} ({})", kVersion,
                                                kGitDescribe));
  Globals globals;
  add_all_global_flags(app, globals);
  GlobalConfig& global = globals.global;
  OutputConfig& output_config = globals.output;
  const std::string& listen = globals.listen;
  const std::string& listen_token = globals.listen_token;
  const std::vector<Command> commands = add_module_commands(
      app, builtin_registry(), [&globals](CLI::App& sub) { add_all_global_flags(sub, globals); });

  // An unknown word in the subcommand position is named as such, not as a stray argument.
  if (argc > 1 && argv[1][0] != '-') {
    std::string word = argv[1];
    bool known = false;
    for (const auto& c : commands) {
      known = known || c.app->check_name(word);
    }
    if (!known) {
      return fail(fmt::format("unknown command '{}': available commands are {}", word,
                              known_commands(app)), 2);
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(fmt::format("{} (see 'ecapture --help')", e.what()), 2);
  }

  const Command* chosen = nullptr;
  for (const auto& c : commands) {
    if (c.app->parsed()) chosen = &c;
  }
  if (chosen == nullptr) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  std::unique_ptr<ModuleConfig> config = chosen->make_config(global);

  if (auto r = config->validate(); !r) return fail(r.error().to_string());
  if (!output_config.host_id.empty()) {
    if (auto r = validate_host_id(output_config.host_id); !r) {
      return fail(r.error().to_string(), 2);
    }
  }
  set_host_id(output_config.host_id);
  std::optional<api::ListenAddress> listen_addr;
  if (!listen.empty()) {
    auto addr = api::parse_listen_address(listen);
    if (!addr) return fail(addr.error().to_string(), 2);
    if (auto r = api::check_listen_policy(*addr, listen_token); !r) {
      return fail(r.error().to_string(), 2);
    }
    listen_addr = *addr;
  }
  if (!has_bpf_privileges()) {
    return fail("loading eBPF programs needs root, or CAP_BPF and CAP_PERFMON: run with sudo");
  }
  auto logger = make_logger(global);
  if (!logger) return fail(logger.error().to_string());
  auto log = *logger;
  // The web view (with --listen) and --har share one tap on the finished messages.
  std::unique_ptr<web::WebHub> web_hub;
  if (listen_addr || output_config.har_given) {
    std::unique_ptr<web::HarFile> har;
    if (output_config.har_given) {
      auto h = web::HarFile::create(output_config.har);
      if (!h) return fail(h.error().to_string());
      har = std::move(*h);
    }
    web::WebOptions wopt;
    wopt.history_rows = listen_addr ? output_config.web_history : 1;
    web_hub = std::make_unique<web::WebHub>(wopt, std::move(har));
  }
  // Closes the hub on every return: the --har file is written once a module ran.
  bool module_ran = false;
  struct HubCloser {
    std::unique_ptr<web::WebHub>& hub;
    bool& commit;
    std::shared_ptr<spdlog::logger> log;
    ~HubCloser() {
      if (!hub) return;
      if (auto r = hub->close(commit); !r) {
        log->error("{}", r.error().to_string());
      } else if (commit && hub->har_path() != nullptr) {
        log->info("har: {} exchanges written to {}",
                  hub->stats().value("har_entries", uint64_t{0}), *hub->har_path());
      }
    }
  } hub_closer{web_hub, module_ran, log};

  // Bound before anything starts, so that a taken port is a start-up error; served below.
  api::ApiServer api_server(log);
  Runner* running = nullptr;  // set once the runner exists; the web view asks it for the config
  if (listen_addr && web_hub) {
    api_server.set_web(web_hub.get(), [&running] {
      return running != nullptr ? running->status().config : nlohmann::json();
    });
  }
  if (listen_addr) {
    auto bound = api_server.bind(*listen_addr, listen_token);
    if (!bound) return fail(bound.error().to_string());
  }

  // Signals are taken by one thread with sigwait: every other thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (auto r = add_log_destinations(global, *log); !r) return fail(r.error().to_string());
  auto outputs = Outputs::create(output_config, global, log, web_hub.get());
  if (!outputs) return fail(outputs.error().to_string());
  Outputs& out = **outputs;
  Runner runner(builtin_registry(), out.sink(), log);
  running = &runner;
  std::atomic<bool> done{false};
  std::thread signals([&] {
    bool stopping = false;
    while (!done.load()) {
      timespec timeout{0, 200 * 1000 * 1000};
      int sig = sigtimedwait(&set, nullptr, &timeout);
      if (sig <= 0) continue;
      if (stopping) {
        log->warn("second signal: exiting now");
        std::_Exit(130);
      }
      stopping = true;
      log->info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      runner.request_stop();
    }
  });
  // The configuration API (--listen): reloads go through the runner; the sink stays open.
  api::ApiHandler api_handler(runner, builtin_registry(), global, log);
  api_handler.set_on_applied([&out, log](const ModuleConfig& applied) {
    out.set_options(applied.global.hex, applied.global.tsize);
    log->set_level(applied.global.debug ? spdlog::level::debug : spdlog::level::info);
  });
  api_handler.set_output_counters([&out] { return out.status_json(); });
  api_handler.add_metrics_source([&out](MetricsText& m) { out.add_metrics(m); });
  if (listen_addr) api_server.serve(api_handler);
  int code = 1;
  if (auto started = runner.start(chosen->module->name, std::move(config)); started) {
    out.mark_started();
    module_ran = true;
    code = runner.wait();
  } else {
    fail(started.error().to_string());
  }
  api_server.stop();
  out.close();  // after the module: everything it emitted is parsed and written
  done.store(true);
  signals.join();
  return code;
}

}  // namespace ecapture::cli
