// Command line: eCapture-compatible global flags and one subcommand per registry module, built
// from the module's entry (its names, help and field table) — no module is named here.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.h"
#include "core/registry.h"

namespace ecapture::cli {

// A module's subcommand: its flags are bound to `bound`, which make_config copies.
struct Command {
  CLI::App* app = nullptr;
  const ModuleInfo* module = nullptr;
  std::shared_ptr<ModuleConfig> bound;
  std::function<void(ModuleConfig&)> finish;  // trailing words, exit statuses

  // The parsed configuration, with the global flags `g`.
  std::unique_ptr<ModuleConfig> make_config(const GlobalConfig& g) const;
};

// Adds one subcommand per module of `registry` to `root`; `add_globals` adds the global flags to
// each (so that they are accepted after the subcommand and listed in its --help).
std::vector<Command> add_module_commands(CLI::App& root, const ModuleRegistry& registry,
                                         const std::function<void(CLI::App&)>& add_globals);

// Parses argv and runs the chosen module until SIGINT/SIGTERM. Returns the exit code.
int run(int argc, char** argv);

}  // namespace ecapture::cli
