// bash/zsh modules: flag validation, shell discovery and the joining of kernel records into
// commands (multi-line commands, chunked lines, statuses, exec/exit, lost records).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "modules/shell/shell_config.h"
#include "modules/shell/shell_events.h"
#include "modules/shell/shell_module.h"

namespace ecapture::shell {
namespace {

constexpr int64_t kWall = 1'000'000'000'000;  // added to the kernel's monotonic timestamps

std::vector<uint8_t> record(uint8_t kind, uint32_t pid, uint8_t flags, int32_t status = 0,
                            std::string_view data = {}, uint64_t offset = 0, uint64_t ts = 0) {
  shell_event h{};
  h.timestamp_ns = ts;
  h.offset = offset;
  h.pid = pid;
  h.uid = 1000;
  h.status = status;
  h.data_len = static_cast<uint32_t>(data.size());
  h.kind = kind;
  h.flags = flags;
  std::strncpy(h.comm, "bash", sizeof(h.comm));
  std::vector<uint8_t> out(sizeof(h) + data.size());
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), data.data(), data.size());
  return out;
}

std::vector<uint8_t> line(uint32_t pid, std::string_view text, uint8_t flags = 0,
                          uint64_t ts = 100) {
  return record(SHELL_RECORD_LINE, pid, flags | SHELL_F_LAST, 0, text, 0, ts);
}
std::vector<uint8_t> prompt(uint32_t pid, int32_t status, uint8_t flags = 0, uint64_t ts = 500) {
  return record(SHELL_RECORD_PROMPT, pid, flags, status, {}, 0, ts);
}

class JoinerTest : public ::testing::Test {
 protected:
  void feed(const std::vector<uint8_t>& r) { ASSERT_TRUE(joiner_.add(r).ok()); }
  ShellJoiner joiner_{ShellKind::kBash, kWall, [this](ShellCommand&& c) { out_.push_back(c); }};
  std::vector<ShellCommand> out_;
};

TEST_F(JoinerTest, OneLineThenPromptGivesTheStatus) {
  feed(line(7, "(exit 3)", 0, 100));
  EXPECT_TRUE(out_.empty());  // the status comes with the next prompt
  feed(prompt(7, 3, 0, 600));
  ASSERT_EQ(out_.size(), 1u);
  const ShellCommand& c = out_[0];
  EXPECT_EQ(c.text, "(exit 3)");
  EXPECT_EQ(c.status, 3);
  EXPECT_EQ(c.pid, 7u);
  EXPECT_EQ(c.uid, 1000u);
  EXPECT_EQ(c.comm, "bash");
  EXPECT_EQ(c.timestamp_ns, static_cast<uint64_t>(kWall + 100));
  EXPECT_EQ(c.duration_ns, 500u);
  EXPECT_EQ(c.end, CommandEnd::kPrompt);
  EXPECT_FALSE(c.incomplete);
}

TEST_F(JoinerTest, ContinuationLinesJoinIntoOneCommand) {
  feed(line(7, "for i in 1 2; do", 0, 100));
  feed(prompt(7, 0, SHELL_F_CONTINUATION, 200));  // PS2: nothing finished
  feed(line(7, "echo $i; done", SHELL_F_CONTINUATION, 300));
  EXPECT_TRUE(out_.empty());
  feed(prompt(7, 0, 0, 900));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text, "for i in 1 2; do\necho $i; done");
  EXPECT_EQ(out_[0].status, 0);
  EXPECT_EQ(out_[0].timestamp_ns, static_cast<uint64_t>(kWall + 100));  // its first line
  EXPECT_EQ(out_[0].duration_ns, 600u);  // from its last line
}

TEST_F(JoinerTest, ChunkedLineIsReassembledExactly) {
  std::string text(2 * SHELL_CHUNK + 123, 'x');
  text[0] = 'a';
  text[SHELL_CHUNK] = 'b';
  text.back() = 'z';
  feed(record(SHELL_RECORD_LINE, 7, 0, 0, std::string_view(text).substr(0, SHELL_CHUNK), 0));
  feed(record(SHELL_RECORD_LINE, 7, 0, 0,
              std::string_view(text).substr(SHELL_CHUNK, SHELL_CHUNK), SHELL_CHUNK));
  feed(record(SHELL_RECORD_LINE, 7, SHELL_F_LAST, 0,
              std::string_view(text).substr(2 * SHELL_CHUNK), 2 * SHELL_CHUNK));
  feed(prompt(7, 0));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text, text);
  EXPECT_FALSE(out_[0].incomplete);
}

TEST_F(JoinerTest, LostChunkMarksTheCommandIncomplete) {
  std::string chunk(SHELL_CHUNK, 'y');
  feed(record(SHELL_RECORD_LINE, 7, 0, 0, chunk, 0));
  // the chunk at SHELL_CHUNK was lost
  feed(record(SHELL_RECORD_LINE, 7, SHELL_F_LAST, 0, "tail", 2 * SHELL_CHUNK));
  feed(prompt(7, 0));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text, chunk + "tail");
  EXPECT_TRUE(out_[0].incomplete);
}

TEST_F(JoinerTest, LineWithoutItsLastChunkIsClosedByThePrompt) {
  feed(record(SHELL_RECORD_LINE, 7, 0, 0, std::string(SHELL_CHUNK, 'q'), 0));
  feed(prompt(7, 2));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text.size(), static_cast<size_t>(SHELL_CHUNK));
  EXPECT_TRUE(out_[0].incomplete);
  EXPECT_EQ(out_[0].status, 2);
}

TEST_F(JoinerTest, InputReadByARunningCommandIsNotACommand) {
  feed(line(7, "read -e v"));
  feed(prompt(7, 0, SHELL_F_CONTINUATION));
  feed(line(7, "some data", SHELL_F_INPUT | SHELL_F_CONTINUATION));
  feed(prompt(7, 0));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text, "read -e v");
}

TEST_F(JoinerTest, EmptyLinesMakeNoRecord) {
  feed(line(7, ""));
  feed(prompt(7, 0));
  feed(line(7, "  \t"));
  feed(prompt(7, 0));
  EXPECT_TRUE(out_.empty());
}

TEST_F(JoinerTest, PromptWithoutACommandIsIgnored) {
  feed(prompt(7, 5));
  EXPECT_TRUE(out_.empty());
}

TEST_F(JoinerTest, UnreadableStatusIsUnknown) {
  feed(line(7, "true"));
  feed(prompt(7, 0, SHELL_F_NO_STATUS));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].status.has_value());
}

TEST_F(JoinerTest, ExecClosesTheCommandWithoutStatus) {
  feed(line(7, "exec true"));
  feed(record(SHELL_RECORD_EXEC, 7, 0, -1));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].text, "exec true");
  EXPECT_FALSE(out_[0].status.has_value());
  EXPECT_FALSE(out_[0].duration_ns.has_value());
  EXPECT_EQ(out_[0].end, CommandEnd::kExec);
  EXPECT_EQ(joiner_.shells(), 0u);
}

TEST_F(JoinerTest, ExitGivesTheExitCodeOrNothingAfterASignal) {
  feed(line(7, "exit 7", 0, 100));
  feed(record(SHELL_RECORD_EXIT, 7, 0, 7, {}, 0, 150));
  feed(line(8, "kill -9 $$"));
  feed(record(SHELL_RECORD_EXIT, 8, 0, -1));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].status, 7);
  EXPECT_EQ(out_[0].end, CommandEnd::kExit);
  EXPECT_EQ(out_[0].duration_ns, 50u);
  EXPECT_FALSE(out_[1].status.has_value());
}

TEST_F(JoinerTest, ShellsAreKeptApart) {
  feed(line(7, "for x in a; do", 0));
  feed(line(8, "echo eight"));
  feed(line(7, "echo $x; done", SHELL_F_CONTINUATION));
  feed(prompt(8, 1));
  feed(prompt(7, 0));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].pid, 8u);
  EXPECT_EQ(out_[0].text, "echo eight");
  EXPECT_EQ(out_[0].status, 1);
  EXPECT_EQ(out_[1].pid, 7u);
  EXPECT_EQ(out_[1].text, "for x in a; do\necho $x; done");
}

TEST_F(JoinerTest, NewCommandWhilePreviousIsOpenClosesThePrevious) {
  feed(line(7, "first"));
  feed(line(7, "second"));  // the prompt record in between was lost
  feed(prompt(7, 0));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].text, "first");
  EXPECT_FALSE(out_[0].status.has_value());
  EXPECT_EQ(out_[1].text, "second");
  EXPECT_EQ(out_[1].status, 0);
}

TEST_F(JoinerTest, FlushReportsRunningCommands) {
  feed(line(7, "sleep 100"));
  joiner_.flush();
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].end, CommandEnd::kShutdown);
  EXPECT_FALSE(out_[0].status.has_value());
}

TEST_F(JoinerTest, MalformedRecordsAreErrors) {
  std::vector<uint8_t> shorty(10);
  EXPECT_FALSE(joiner_.add(shorty).ok());
  auto r = line(7, "abc");
  r.pop_back();  // data_len says 3, only 2 bytes follow
  EXPECT_FALSE(joiner_.add(r).ok());
  EXPECT_FALSE(joiner_.add(record(42, 7, 0)).ok());
  EXPECT_TRUE(out_.empty());
}

TEST(ZshJoinerTest, LinesAreUnmetafiedAndLoseTheirNewline) {
  std::vector<ShellCommand> out;
  ShellJoiner j(ShellKind::kZsh, 0, [&](ShellCommand&& c) { out.push_back(c); });
  // "echo à" with the 0xa0 of "à" metafied as 0x83, 0xa0 ^ 32.
  std::string metafied = "echo \xc3\x83\x80\n";
  ASSERT_TRUE(j.add(line(9, metafied)).ok());
  ASSERT_TRUE(j.add(prompt(9, 0)).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "echo \xc3\xa0");
}

TEST(ZshJoinerTest, Unmetafy) {
  EXPECT_EQ(ShellJoiner::unmetafy("plain"), "plain");
  EXPECT_EQ(ShellJoiner::unmetafy(std::string("\x83\xa3", 2)), std::string("\x83", 1));
  EXPECT_EQ(ShellJoiner::unmetafy(std::string("a\x83", 2)), std::string("a\x83", 2));
}

TEST(ShellConfigTest, ErrnumberRange) {
  BashConfig c;
  EXPECT_TRUE(c.validate().ok());
  for (int ok : {0, 3, 255}) {
    c.errnumber = ok;
    EXPECT_TRUE(c.validate().ok()) << ok;
  }
  for (int bad : {-1, 256, 1000}) {
    c.errnumber = bad;
    auto r = c.validate();
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--errnumber"), std::string::npos);
    EXPECT_NE(r.error().message.find(std::to_string(bad)), std::string::npos);
  }
  ZshConfig z;
  z.errnumber = 256;
  EXPECT_FALSE(z.validate().ok());
}

TEST(ShellConfigTest, CloneAndJson) {
  BashConfig c;
  c.bash = "/usr/bin/bash";
  c.readlineso = "/lib/libreadline.so.8";
  c.errnumber = 3;
  auto copy = c.clone();
  auto j = copy->to_json();
  EXPECT_EQ(j["bashpath"], "/usr/bin/bash");
  EXPECT_EQ(j["readline"], "/lib/libreadline.so.8");
  EXPECT_EQ(j["errnumber"], 3);
  EXPECT_TRUE(ZshConfig().to_json()["errnumber"].is_null());
}

TEST(ShellConfigTest, DefaultShellPath) {
  EXPECT_EQ(default_shell_path("/opt/bash", "/bin/bash", "bash", "/bin/bash"), "/opt/bash");
  EXPECT_EQ(default_shell_path("", "/usr/local/bin/bash5", "bash", "/bin/bash"),
            "/usr/local/bin/bash5");
  EXPECT_EQ(default_shell_path("", "/bin/zsh", "bash", "/bin/bash"), "/bin/bash");
  EXPECT_EQ(default_shell_path("", "/opt/bash-dir/zsh", "bash", "/bin/bash"), "/bin/bash");
  EXPECT_EQ(default_shell_path("", nullptr, "zsh", "/bin/zsh"), "/bin/zsh");
}

TEST(ShellLocateTest, SystemBash) {
  if (access("/bin/bash", R_OK) != 0) GTEST_SKIP() << "no /bin/bash";
  BashConfig c;
  c.bash = "/bin/bash";
  auto t = locate_bash(c, nullptr);
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->shell, "/bin/bash");
  EXPECT_NE(t->ino, 0u);
  EXPECT_NE(t->off_status, 0u);
  EXPECT_NE(t->off_line_count, 0u);
  EXPECT_NE(t->off_interactive, 0u);
  EXPECT_NE(t->off_executing, 0u);
  ASSERT_EQ(t->probes.size(), 2u);
  EXPECT_EQ(t->probes[0].symbol, "readline");
  EXPECT_EQ(t->probes[0].type, bpf::ProbeType::kUprobe);
  EXPECT_EQ(t->probes[1].type, bpf::ProbeType::kUretprobe);
}

TEST(ShellLocateTest, BadBash) {
  BashConfig c;
  c.bash = "/nonexistent/bash";
  auto r = locate_bash(c, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/bash"), std::string::npos);
  EXPECT_NE(r.error().message.find("--bash"), std::string::npos);

  c.bash = "/bin/ls";  // an ELF executable without readline
  r = locate_bash(c, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("readline"), std::string::npos);
  EXPECT_NE(r.error().message.find("--readlineso"), std::string::npos);
}

TEST(ShellLocateTest, ZshMustExportZleentry) {
  ZshConfig z;
  z.zsh = "/bin/ls";
  auto r = locate_zsh(z, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("zleentry"), std::string::npos);
  if (access("/bin/zsh", R_OK) != 0) return;
  z.zsh = "";
  auto t = locate_zsh(z, "/bin/zsh");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->shell, "/bin/zsh");
  EXPECT_NE(t->off_status, 0u);
  ASSERT_EQ(t->probes.size(), 2u);
  EXPECT_EQ(t->probes[0].symbol, "zleentry");
}

}  // namespace
}  // namespace ecapture::shell
