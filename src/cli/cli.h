// Command line: eCapture-compatible global flags and one subcommand per module.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.h"
#include "modules/openssl/openssl_config.h"

namespace ecapture::cli {

// A registered subcommand: its CLI11 app and how to turn the parsed flags into a config.
struct Command {
  CLI::App* app = nullptr;
  std::string module;  // registry name
  std::function<std::unique_ptr<ModuleConfig>(const GlobalConfig&)> make_config;
};

// The Command of a subcommand whose flags are bound to `*cfg`: its config is a copy of `*cfg`
// with the global flags, completed by `finish(Config&)` for flags that need work after parsing.
template <typename Config, typename Finish>
Command make_command(CLI::App* app, std::string module, std::shared_ptr<Config> cfg,
                     Finish finish) {
  Command c;
  c.app = app;
  c.module = std::move(module);
  c.make_config = [cfg, finish](const GlobalConfig& g) -> std::unique_ptr<ModuleConfig> {
    auto out = std::make_unique<Config>(*cfg);
    out->global = g;
    finish(*out);
    return out;
  };
  return c;
}
template <typename Config>
Command make_command(CLI::App* app, std::string module, std::shared_ptr<Config> cfg) {
  return make_command(app, std::move(module), std::move(cfg), [](Config&) {});
}

// The capture-mode flags of the TLS commands (tls, gotls, gnutls): -m/--model, -k/--keylogfile,
// -w/--pcapfile, -i/--ifname and the trailing pcap filter expression, whose words are returned
// (join them with join_words after parsing).
std::shared_ptr<std::vector<std::string>> add_tls_mode_flags(CLI::App* app,
                                                             openssl::CaptureFields& fields);
std::string join_words(const std::vector<std::string>& words);

Command add_tls_command(CLI::App& root);
Command add_gotls_command(CLI::App& root);
Command add_gnutls_command(CLI::App& root);
Command add_nss_command(CLI::App& root);
Command add_bash_command(CLI::App& root);
Command add_zsh_command(CLI::App& root);
Command add_mysqld_command(CLI::App& root);
Command add_postgres_command(CLI::App& root);

// Parses argv and runs the chosen module until SIGINT/SIGTERM. Returns the exit code.
int run(int argc, char** argv);

}  // namespace ecapture::cli
