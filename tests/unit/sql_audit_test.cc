// mysqld and postgres modules without a kernel: command names, version and signature detection,
// config validation, record assembly from synthetic kernel records, and the audit text format.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "modules/mysqld/mysqld_config.h"
#include "modules/mysqld/mysqld_events.h"
#include "modules/postgres/postgres_events.h"
#include "output/audit_text.h"

namespace ecapture {
namespace {

using mysqld::Flavor;

TEST(MysqldNames, CommandNames) {
  EXPECT_EQ(mysqld::command_name(0, Flavor::kMariaDb), "COM_SLEEP");
  EXPECT_EQ(mysqld::command_name(1, Flavor::kMariaDb), "COM_QUIT");
  EXPECT_EQ(mysqld::command_name(3, Flavor::kMySql), "COM_QUERY");
  EXPECT_EQ(mysqld::command_name(22, Flavor::kMariaDb), "COM_STMT_PREPARE");
  EXPECT_EQ(mysqld::command_name(23, Flavor::kMariaDb), "COM_STMT_EXECUTE");
  EXPECT_EQ(mysqld::command_name(25, Flavor::kMySql), "COM_STMT_CLOSE");
  EXPECT_EQ(mysqld::command_name(30, Flavor::kMySql), "COM_BINLOG_DUMP_GTID");
  EXPECT_EQ(mysqld::command_name(30, Flavor::kMariaDb), "COM_UNIMPLEMENTED");
  EXPECT_EQ(mysqld::command_name(31, Flavor::kMariaDb), "COM_RESET_CONNECTION");
  EXPECT_EQ(mysqld::command_name(250, Flavor::kMariaDb), "COM_STMT_BULK_EXECUTE");
  EXPECT_EQ(mysqld::command_name(250, Flavor::kMySql), "COM_250");
  EXPECT_EQ(mysqld::command_name(32, Flavor::kMySql), "COM_CLONE");
  EXPECT_EQ(mysqld::command_name(99, Flavor::kMariaDb), "COM_99");
}

TEST(MysqldVersion, Sniff) {
  std::string maria("\0xx 10.11.19-MariaDB\0mysqld-10.11\0", 33);
  auto v = mysqld::sniff_server_version(maria);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->flavor, Flavor::kMariaDb);
  EXPECT_EQ(v->version, "10.11.19");
  EXPECT_EQ(v->display(), "MariaDB 10.11.19");
  v = mysqld::sniff_server_version(std::string("abc\0mysqld-8.0\0", 15));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->flavor, Flavor::kMySql);
  EXPECT_EQ(v->version, "8.0");
  EXPECT_FALSE(mysqld::sniff_server_version("GNU coreutils ls 9.1"));
}

TEST(MysqldSignature, FromMangledNameAndVersion) {
  std::optional<mysqld::ServerVersion> none;
  EXPECT_EQ(*mysqld::detect_signature("_Z16dispatch_command19enum_server_commandP3THDPcjb", none),
            MYSQLD_ABI_LEGACY);
  EXPECT_EQ(*mysqld::detect_signature("_Z16dispatch_command19enum_server_commandP3THDPcj", none),
            MYSQLD_ABI_LEGACY);
  EXPECT_EQ(*mysqld::detect_signature("_Z16dispatch_commandP3THDPK8COM_DATA19enum_server_command",
                                      none),
            MYSQLD_ABI_COM_DATA);
  // By address (no name): the version decides.
  EXPECT_EQ(*mysqld::detect_signature("", mysqld::ServerVersion{Flavor::kMySql, "8.0"}),
            MYSQLD_ABI_COM_DATA);
  EXPECT_EQ(*mysqld::detect_signature("", mysqld::ServerVersion{Flavor::kMySql, "5.6"}),
            MYSQLD_ABI_LEGACY);
  EXPECT_EQ(*mysqld::detect_signature("", mysqld::ServerVersion{Flavor::kMariaDb, "10.11.19"}),
            MYSQLD_ABI_LEGACY);
  auto r = mysqld::detect_signature("my_dispatch", none);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("my_dispatch"), std::string::npos);
}

TEST(MysqldConfig, Validate) {
  mysqld::MysqldConfig c;
  EXPECT_TRUE(c.validate());
  c.offset = 0x1234;
  EXPECT_TRUE(c.validate());
  c.funcname = "dispatch_command";
  auto r = c.validate();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--offset 0x1234 and --funcname"), std::string::npos);
  mysqld::MysqldConfig d;
  d.global.btf = 2;
  EXPECT_FALSE(d.validate());
  EXPECT_EQ(d.to_json()["funcname"], "");
}

// A kernel record as bpf/mysqld.bpf.c would write it.
std::vector<uint8_t> mysql_record(uint8_t kind, uint32_t tid, uint32_t cmd, uint64_t start,
                                  uint64_t total, uint64_t offset, std::string_view data,
                                  uint8_t flags = 0, uint32_t err = 0, uint32_t stmt_id = 0,
                                  uint64_t thd = 0xabc000) {
  mysqld_event h{};
  h.timestamp_ns = start;
  h.thd = thd;
  h.total_len = total;
  h.offset = offset;
  h.duration_ns = kind == MYSQLD_RECORD_END ? 5000 : 0;
  h.pid = 100;
  h.tid = tid;
  h.uid = 27;
  h.data_len = static_cast<uint32_t>(data.size());
  h.command = cmd;
  h.sql_errno = err;
  h.stmt_id = stmt_id;
  h.kind = kind;
  h.flags = flags;
  std::memcpy(h.comm, "mariadbd", 8);
  std::vector<uint8_t> out(sizeof(h) + data.size());
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), data.data(), data.size());
  return out;
}

class MysqldAssemblerTest : public ::testing::Test {
 protected:
  std::vector<AuditEvent> out;
  mysqld::CommandAssembler a{Flavor::kMariaDb, 1000, [this](AuditEvent&& e) {
                               out.push_back(std::move(e));
                             }};
  void add(const std::vector<uint8_t>& r) { ASSERT_TRUE(a.add(r)); }
};

TEST_F(MysqldAssemblerTest, ChunkedQueryThenEnd) {
  std::string q = "select '" + std::string(70000, 'x') + "'";
  const uint64_t chunk = MYSQLD_CHUNK;
  for (uint64_t off = 0; off < q.size(); off += chunk) {
    add(mysql_record(MYSQLD_RECORD_DATA, 7, 3, 500, q.size(), off,
                     std::string_view(q).substr(off, chunk)));
  }
  EXPECT_TRUE(out.empty());
  add(mysql_record(MYSQLD_RECORD_END, 7, 3, 500, q.size(), 0, ""));
  ASSERT_EQ(out.size(), 1u);
  const AuditEvent& e = out[0];
  EXPECT_EQ(e.kind, "mysqld");
  EXPECT_EQ(e.type, "COM_QUERY");
  EXPECT_EQ(e.text, q);
  EXPECT_EQ(e.text_length, q.size());
  EXPECT_EQ(e.status, 0);
  EXPECT_EQ(e.duration_ns, 5000u);
  EXPECT_EQ(e.timestamp_ns, 1500u);
  EXPECT_EQ(e.pid, 100u);
  EXPECT_EQ(e.tid, 7u);
  EXPECT_EQ(e.uid, 27u);
  EXPECT_EQ(e.comm, "mariadbd");
  EXPECT_EQ(a.pending(), 0u);
}

TEST_F(MysqldAssemblerTest, ErrorStatusAndMessage) {
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 3, 10, 7, 0, "selec 1"));
  add(mysql_record(MYSQLD_RECORD_END, 7, 3, 10, 7, 0, "You have an error", MYSQLD_F_ERROR, 1064));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, 1064);
  ASSERT_EQ(out[0].attrs.size(), 1u);
  EXPECT_EQ(out[0].attrs[0], (std::pair<std::string, std::string>{"error", "You have an error"}));
}

TEST_F(MysqldAssemblerTest, PreparedStatementTextFollowsItsId) {
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 22, 10, 10, 0, "select ?+1"));
  add(mysql_record(MYSQLD_RECORD_END, 7, 22, 10, 10, 0, "", MYSQLD_F_STMT_ID, 0, 3));
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 23, 20, 4, 0, std::string_view("\x03\0\0\0", 4)));
  add(mysql_record(MYSQLD_RECORD_END, 7, 23, 20, 4, 0, ""));
  // MariaDB's "last prepared" id
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 23, 25, 4, 0, "\xff\xff\xff\xff"));
  add(mysql_record(MYSQLD_RECORD_END, 7, 23, 25, 4, 0, ""));
  // another connection (THD) has no statement 3
  add(mysql_record(MYSQLD_RECORD_DATA, 8, 23, 27, 4, 0, std::string_view("\x03\0\0\0", 4), 0, 0,
                   0, 0xdef000));
  add(mysql_record(MYSQLD_RECORD_END, 8, 23, 27, 4, 0, "", 0, 0, 0, 0xdef000));
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 25, 30, 4, 0, std::string_view("\x03\0\0\0", 4)));
  add(mysql_record(MYSQLD_RECORD_END, 7, 25, 30, 4, 0, ""));
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 23, 40, 4, 0, std::string_view("\x03\0\0\0", 4)));
  add(mysql_record(MYSQLD_RECORD_END, 7, 23, 40, 4, 0, "", MYSQLD_F_ERROR, 1243));
  ASSERT_EQ(out.size(), 6u);
  const std::pair<std::string, std::string> id3{"stmt_id", "3"};
  EXPECT_EQ(out[0].type, "COM_STMT_PREPARE");
  EXPECT_EQ(out[0].attrs.at(0), id3);
  EXPECT_EQ(out[1].type, "COM_STMT_EXECUTE");
  EXPECT_EQ(out[1].text, "select ?+1");
  EXPECT_EQ(out[1].attrs.at(0), id3);
  EXPECT_EQ(out[2].text, "select ?+1");
  EXPECT_EQ(out[2].attrs.at(0), id3);
  EXPECT_EQ(out[3].text, "");
  EXPECT_EQ(out[3].attrs.at(0), id3);
  EXPECT_EQ(out[4].type, "COM_STMT_CLOSE");
  EXPECT_EQ(out[4].text, "select ?+1");
  EXPECT_EQ(out[5].text, "");  // closed
  EXPECT_EQ(out[5].status, 1243);
  EXPECT_EQ(a.statements(), 0u);
}

TEST_F(MysqldAssemblerTest, QuitForgetsTheConnection) {
  add(mysql_record(MYSQLD_RECORD_DATA, 7, 22, 10, 8, 0, "select 1"));
  add(mysql_record(MYSQLD_RECORD_END, 7, 22, 10, 8, 0, "", MYSQLD_F_STMT_ID, 0, 1));
  EXPECT_EQ(a.statements(), 1u);
  add(mysql_record(MYSQLD_RECORD_END, 7, 1, 20, 0, 0, ""));
  EXPECT_EQ(a.statements(), 0u);
  EXPECT_EQ(out.back().type, "COM_QUIT");
}

TEST_F(MysqldAssemblerTest, Malformed) {
  std::vector<uint8_t> short_rec(10);
  EXPECT_FALSE(a.add(short_rec));
  auto r = mysql_record(MYSQLD_RECORD_DATA, 7, 3, 10, 4, 0, "abcd");
  r.resize(r.size() - 1);
  EXPECT_FALSE(a.add(r));
  EXPECT_TRUE(out.empty());
}

std::vector<uint8_t> pg_record(uint8_t kind, uint32_t pid, uint64_t ts, uint64_t offset,
                               std::string_view data, uint8_t flags = POSTGRES_F_LAST,
                               const char* title = "postgres: postgres postgres 127.0.0.1(5) idle",
                               uint8_t hook = POSTGRES_HOOK_ACTIVITY) {
  postgres_event h{};
  h.timestamp_ns = ts;
  h.offset = offset;
  h.pid = h.tid = pid;
  h.uid = 101;
  h.data_len = static_cast<uint32_t>(data.size());
  h.state = kind == POSTGRES_RECORD_TEXT ? POSTGRES_STATE_RUNNING : POSTGRES_STATE_IDLE;
  h.kind = kind;
  h.flags = kind == POSTGRES_RECORD_TEXT ? flags : 0;
  h.hook = hook;
  std::memcpy(h.comm, "postgres", 8);
  std::strncpy(h.title, title, sizeof(h.title) - 1);
  std::vector<uint8_t> out(sizeof(h) + data.size());
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), data.data(), data.size());
  return out;
}

class PostgresAssemblerTest : public ::testing::Test {
 protected:
  std::vector<AuditEvent> out;
  postgres::StatementAssembler a{0, [this](AuditEvent&& e) { out.push_back(std::move(e)); }};
  void add(const std::vector<uint8_t>& r) { ASSERT_TRUE(a.add(r)); }
};

TEST_F(PostgresAssemblerTest, SimpleQueryEndsAtIdle) {
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 1000, 0, "select 1"));
  EXPECT_TRUE(out.empty());
  add(pg_record(POSTGRES_RECORD_STATE, 50, 4000, 0, ""));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "select 1");
  EXPECT_EQ(out[0].type, "QUERY");
  EXPECT_EQ(out[0].kind, "postgres");
  EXPECT_EQ(out[0].duration_ns, 3000u);
  EXPECT_EQ(out[0].pid, 50u);
  EXPECT_EQ(out[0].uid, 101u);
  EXPECT_EQ(out[0].status, AuditEvent::kStatusUnknown);
}

TEST_F(PostgresAssemblerTest, ParseBindExecuteIsOneStatementAndPipelinesSplit) {
  // Parse, Bind, Execute of A; then B in the same busy period (pipeline); then Sync -> idle
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 100, 0, "select $1"));
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 110, 0, "select $1"));
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 120, 0, "select $1"));
  add(pg_record(POSTGRES_RECORD_TEXT, 60, 125, 0, "other backend"));
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 130, 0, "select 2"));
  add(pg_record(POSTGRES_RECORD_STATE, 50, 200, 0, ""));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].text, "select $1");
  EXPECT_EQ(out[0].duration_ns, 30u);
  EXPECT_EQ(out[1].text, "select 2");
  EXPECT_EQ(out[1].duration_ns, 70u);
  EXPECT_EQ(a.open_statements(), 1u);
  a.flush();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].text, "other backend");
  EXPECT_EQ(out[2].duration_ns, AuditEvent::kDurationUnknown);
}

TEST_F(PostgresAssemblerTest, ChunkedTextAndParallelWorkers) {
  std::string q(100000, 'q');
  const uint64_t step = POSTGRES_CHUNK - 1;
  for (uint64_t off = 0; off < q.size(); off += step) {
    bool last = off + step >= q.size();
    add(pg_record(POSTGRES_RECORD_TEXT, 50, 100, off, std::string_view(q).substr(off, step),
                  last ? POSTGRES_F_LAST : 0));
  }
  add(pg_record(POSTGRES_RECORD_TEXT, 51, 150, 0, "select count(*) from t", POSTGRES_F_LAST,
                "postgres: parallel worker for PID 50"));
  add(pg_record(POSTGRES_RECORD_STATE, 50, 300, 0, ""));
  add(pg_record(POSTGRES_RECORD_STATE, 51, 300, 0, ""));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, q);
  EXPECT_EQ(out[0].text_length, q.size());
  EXPECT_EQ(a.ignored_parallel_workers(), 1u);
}

TEST_F(PostgresAssemblerTest, TextArgumentHookEmitsAtOnce) {
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 100, 0, "select 1", POSTGRES_F_LAST, "postgres: x",
                POSTGRES_HOOK_TEXT_ARG0));
  add(pg_record(POSTGRES_RECORD_TEXT, 50, 110, 0, "select 1", POSTGRES_F_LAST, "postgres: x",
                POSTGRES_HOOK_TEXT_ARG0));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].duration_ns, AuditEvent::kDurationUnknown);
}

TEST(AuditText, Layout) {
  AuditEvent e;
  e.timestamp_ns = 1700000000123456789ull;
  e.pid = 1;
  e.tid = 2;
  e.uid = 3;
  e.comm = "mariadbd";
  e.kind = "mysqld";
  e.type = "COM_QUERY";
  e.status = 1064;
  e.duration_ns = 42;
  e.text = "selec 1\nx";
  e.text_length = 9;
  e.attrs = {{"stmt_id", "4"}, {"error", "bad \"x\" near 'y'"}};
  std::string s = encode_audit_text(e, TextOptions{});
  auto nl = s.find('\n');
  std::string header = s.substr(s.find(']') + 1, nl - s.find(']') - 1);
  EXPECT_EQ(header, " mysqld pid=1 tid=2 uid=3 comm=mariadbd type=COM_QUERY status=1064 "
                    "duration_ns=42 stmt_id=4 error=\"bad \\\"x\\\" near 'y'\" len=9");
  EXPECT_EQ(s.substr(nl + 1), "selec 1\nx\n");
  e.status = AuditEvent::kStatusUnknown;
  e.duration_ns = AuditEvent::kDurationUnknown;
  e.attrs.clear();
  e.text_length = 20;  // not all captured
  s = encode_audit_text(e, TextOptions{false, 3});
  EXPECT_NE(s.find(" status=? duration_ns=? len=20 shown=3\nsel\n"), std::string::npos) << s;
  e.text = std::string("\x01\x02", 2);
  e.text_length = 2;
  s = encode_audit_text(e, TextOptions{});
  EXPECT_NE(s.find(" len=2 hex\n00000000  01 02"), std::string::npos) << s;
}

}  // namespace
}  // namespace ecapture
