// Decoding of the shell modules' kernel records and their joining into one command per record:
// the lines of a multi-line command, then the status the shell reports before its next prompt.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "core/result.h"
#include "modules/shell/shell_abi.h"

namespace ecapture::shell {

enum class ShellKind { kBash, kZsh };

// How a command's record was closed.
enum class CommandEnd {
  kPrompt,    // the shell showed its next prompt: status is the command's exit status
  kExec,      // the shell replaced itself (exec): no status
  kExit,      // the shell exited: status is the shell's exit code (or unknown after a signal)
  kShutdown,  // capture stopped while the command ran: no status
};

const char* to_string(CommandEnd e);

struct ShellCommand {
  uint64_t timestamp_ns = 0;  // wall clock, when its first line was read
  uint32_t pid = 0;
  uint32_t uid = 0;
  uint64_t cgroup_id = 0;
  std::string comm;
  std::string text;  // the lines, joined with "\n"
  std::optional<int> status;
  std::optional<uint64_t> duration_ns;  // from the last line read to the next prompt or exit
  CommandEnd end = CommandEnd::kPrompt;
  bool incomplete = false;  // some chunk of a line was lost
};

class ShellJoiner {
 public:
  using Emit = std::function<void(ShellCommand&&)>;
  // `mono_to_wall_ns` is added to the kernel's CLOCK_MONOTONIC timestamps.
  ShellJoiner(ShellKind kind, int64_t mono_to_wall_ns, Emit emit)
      : kind_(kind), mono_to_wall_ns_(mono_to_wall_ns), emit_(std::move(emit)) {}

  // One record from the event map. Malformed records are an error (and dropped).
  Result<void> add(std::span<const uint8_t> record);
  // Emits every command still in flight, with no status (shutdown).
  void flush();
  size_t shells() const { return shells_.size(); }

  // zsh keeps strings "metafied": 0x83 followed by (byte ^ 32) stands for bytes zsh treats
  // specially. Returns the plain bytes.
  static std::string unmetafy(std::string_view s);

 private:
  struct Line {
    std::string text;
    uint64_t next_offset = 0;
    uint8_t flags = 0;
    uint64_t mono_ns = 0;
    uint32_t uid = 0;
    uint64_t cgroup_id = 0;
    std::string comm;
    bool broken = false;
  };
  struct Shell {
    std::optional<Line> reading;  // a line whose chunks are still arriving
    std::optional<ShellCommand> command;
    uint64_t last_line_mono_ns = 0;
  };

  void add_chunk(Shell& sh, const shell_event& h, std::string_view data);
  void finish_line(Shell& sh, uint32_t pid, Line&& line);
  // A line whose last chunk never came (lost): taken as it is, marked incomplete.
  void finish_partial_line(Shell& sh, uint32_t pid);
  void close_command(Shell& sh, CommandEnd end, std::optional<int> status,
                     std::optional<uint64_t> end_mono_ns);

  ShellKind kind_;
  int64_t mono_to_wall_ns_;
  Emit emit_;
  std::unordered_map<uint32_t, Shell> shells_;  // by pid
};

}  // namespace ecapture::shell
