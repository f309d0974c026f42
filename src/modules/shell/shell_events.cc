// Record decoding and command joining for the bash and zsh modules.
#include "modules/shell/shell_events.h"

#include <cstddef>
#include <cstring>
#include <utility>

#include "bpf/record.h"

namespace ecapture::shell {

static_assert(sizeof(shell_event) == 64 && offsetof(shell_event, status) == 24 &&
                  offsetof(shell_event, data_len) == 28 && offsetof(shell_event, kind) == 32 &&
                  offsetof(shell_event, comm) == 40 && offsetof(shell_event, cgroup_id) == 56,
              "ABI: shell_event layout differs from shell_abi.h's");

namespace {
constexpr size_t kMaxShells = 65536;
constexpr unsigned char kZshMeta = 0x83;

bool blank(const std::string& s) { return s.find_first_not_of(" \t\n") == std::string::npos; }
}  // namespace

const char* to_string(CommandEnd e) {
  switch (e) {
    case CommandEnd::kPrompt:
      return "prompt";
    case CommandEnd::kExec:
      return "exec";
    case CommandEnd::kExit:
      return "exit";
    case CommandEnd::kShutdown:
      return "shutdown";
  }
  return "?";
}

std::string ShellJoiner::unmetafy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) == kZshMeta && i + 1 < s.size()) {
      out += static_cast<char>(s[++i] ^ 32);
    } else {
      out += s[i];
    }
  }
  return out;
}

Result<void> ShellJoiner::add(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(const shell_event h, bpf::read_struct<shell_event>(record, "shell"));
  ASSIGN_OR_RETURN(const std::span<const uint8_t> payload,
                   bpf::payload_after<shell_event>(record, h.data_len, SHELL_CHUNK, "shell"));
  if (shells_.size() >= kMaxShells && !shells_.contains(h.pid)) {
    flush();  // bounded: shells whose exit was lost must not pile up
  }
  Shell& sh = shells_[h.pid];
  switch (h.kind) {
    case SHELL_RECORD_LINE:
      add_chunk(sh, h, {reinterpret_cast<const char*>(payload.data()), payload.size()});
      return {};
    case SHELL_RECORD_PROMPT:
      finish_partial_line(sh, h.pid);
      if (h.flags & SHELL_F_CONTINUATION) return {};
      close_command(sh, CommandEnd::kPrompt,
                    (h.flags & SHELL_F_NO_STATUS) ? std::nullopt : std::optional<int>(h.status),
                    h.timestamp_ns);
      return {};
    case SHELL_RECORD_EXEC:
    case SHELL_RECORD_EXIT: {
      finish_partial_line(sh, h.pid);
      const bool exec = h.kind == SHELL_RECORD_EXEC;
      std::optional<int> status;
      if (!exec && h.status >= 0) status = h.status;
      close_command(sh, exec ? CommandEnd::kExec : CommandEnd::kExit, status,
                    exec ? std::nullopt : std::optional<uint64_t>(h.timestamp_ns));
      shells_.erase(h.pid);
      return {};
    }
    default:
      return make_error("unknown shell record kind {}", h.kind);
  }
}

void ShellJoiner::add_chunk(Shell& sh, const shell_event& h, std::string_view data) {
  if (h.offset == 0) finish_partial_line(sh, h.pid);  // the previous line lost its last chunk
  if (!sh.reading) {
    sh.reading.emplace();
    sh.reading->flags = h.flags;
    sh.reading->mono_ns = h.timestamp_ns;
    sh.reading->uid = h.uid;
    sh.reading->cgroup_id = h.cgroup_id;
    sh.reading->comm.assign(h.comm, strnlen(h.comm, sizeof(h.comm)));
    if (h.offset != 0) sh.reading->broken = true;  // its first chunks were lost
    sh.reading->next_offset = h.offset;
  }
  Line& line = *sh.reading;
  if (h.offset != line.next_offset) line.broken = true;
  line.text.append(data);
  line.next_offset = h.offset + data.size();
  if (h.flags & SHELL_F_LAST) finish_line(sh, h.pid, *std::exchange(sh.reading, std::nullopt));
}

void ShellJoiner::finish_partial_line(Shell& sh, uint32_t pid) {
  if (!sh.reading) return;
  Line line = std::move(*sh.reading);
  sh.reading.reset();
  line.broken = true;
  finish_line(sh, pid, std::move(line));
}

void ShellJoiner::finish_line(Shell& sh, uint32_t pid, Line&& line) {
  if (line.flags & SHELL_F_INPUT) return;  // read by a running command, not a command
  std::string text = std::move(line.text);
  if (kind_ == ShellKind::kZsh) {
    text = unmetafy(text);
    if (!text.empty() && text.back() == '\n') text.pop_back();
  }
  if (sh.command && !(line.flags & SHELL_F_CONTINUATION)) {
    // A new command while the previous one is open: its prompt record was lost.
    close_command(sh, CommandEnd::kShutdown, std::nullopt, std::nullopt);
  }
  if (!sh.command) {
    ShellCommand c;
    c.timestamp_ns = static_cast<uint64_t>(static_cast<int64_t>(line.mono_ns) + mono_to_wall_ns_);
    c.pid = pid;
    c.uid = line.uid;
    c.cgroup_id = line.cgroup_id;
    c.comm = std::move(line.comm);
    c.text = std::move(text);
    sh.command = std::move(c);
  } else {
    sh.command->text += '\n';
    sh.command->text += text;
  }
  sh.command->incomplete = sh.command->incomplete || line.broken;
  sh.last_line_mono_ns = line.mono_ns;
}

void ShellJoiner::close_command(Shell& sh, CommandEnd end, std::optional<int> status,
                                std::optional<uint64_t> end_mono_ns) {
  if (!sh.command) return;
  ShellCommand c = std::move(*sh.command);
  sh.command.reset();
  if (blank(c.text) && !c.incomplete) return;  // an empty line: nothing ran
  c.end = end;
  c.status = status;
  if (end_mono_ns && *end_mono_ns >= sh.last_line_mono_ns) {
    c.duration_ns = *end_mono_ns - sh.last_line_mono_ns;
  }
  emit_(std::move(c));
}

void ShellJoiner::flush() {
  for (auto& [pid, sh] : shells_) {
    finish_partial_line(sh, pid);
    close_command(sh, CommandEnd::kShutdown, std::nullopt, std::nullopt);
  }
  shells_.clear();
}

}  // namespace ecapture::shell
