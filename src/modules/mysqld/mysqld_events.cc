// Command names, version and signature detection, record assembly for the mysqld module.
#include "modules/mysqld/mysqld_events.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <numeric>
#include <regex>

#include "bpf/record.h"

namespace ecapture::mysqld {

static_assert(sizeof(mysqld_event) == 104 && offsetof(mysqld_event, cgroup_id) == 96,
              "ABI: mysqld_event size, cgroup_id offset");
static_assert(offsetof(mysqld_event, pid) == 48, "ABI: pid offset");
static_assert(offsetof(mysqld_event, kind) == 76 && offsetof(mysqld_event, comm) == 80,
              "ABI: kind and comm offsets");

std::string ServerVersion::display() const {
  return fmt::format("{} {}", flavor == Flavor::kMariaDb ? "MariaDB" : "MySQL", version);
}

std::optional<ServerVersion> sniff_server_version(std::string_view bytes) {
  static const std::regex kMariaDb(R"(\b(\d{1,2}\.\d{1,2}\.\d{1,3})-MariaDB)");
  static const std::regex kMySql(R"(mysqld-(\d\.\d))");
  std::match_results<std::string_view::const_iterator> m;
  if (std::regex_search(bytes.begin(), bytes.end(), m, kMariaDb)) {
    return ServerVersion{Flavor::kMariaDb, m[1].str()};
  }
  if (std::regex_search(bytes.begin(), bytes.end(), m, kMySql)) {
    return ServerVersion{Flavor::kMySql, m[1].str()};
  }
  return std::nullopt;
}

std::string command_name(uint32_t command, Flavor flavor) {
  static constexpr std::array<const char*, 32> kNames = {"COM_SLEEP",
                                                         "COM_QUIT",
                                                         "COM_INIT_DB",
                                                         "COM_QUERY",
                                                         "COM_FIELD_LIST",
                                                         "COM_CREATE_DB",
                                                         "COM_DROP_DB",
                                                         "COM_REFRESH",
                                                         "COM_SHUTDOWN",
                                                         "COM_STATISTICS",
                                                         "COM_PROCESS_INFO",
                                                         "COM_CONNECT",
                                                         "COM_PROCESS_KILL",
                                                         "COM_DEBUG",
                                                         "COM_PING",
                                                         "COM_TIME",
                                                         "COM_DELAYED_INSERT",
                                                         "COM_CHANGE_USER",
                                                         "COM_BINLOG_DUMP",
                                                         "COM_TABLE_DUMP",
                                                         "COM_CONNECT_OUT",
                                                         "COM_REGISTER_SLAVE",
                                                         "COM_STMT_PREPARE",
                                                         "COM_STMT_EXECUTE",
                                                         "COM_STMT_SEND_LONG_DATA",
                                                         "COM_STMT_CLOSE",
                                                         "COM_STMT_RESET",
                                                         "COM_SET_OPTION",
                                                         "COM_STMT_FETCH",
                                                         "COM_DAEMON",
                                                         "COM_BINLOG_DUMP_GTID",
                                                         "COM_RESET_CONNECTION"};
  if (command == 30 && flavor == Flavor::kMariaDb) return "COM_UNIMPLEMENTED";
  if (command < kNames.size()) return kNames[command];
  if (flavor == Flavor::kMySql) {
    if (command == 32) return "COM_CLONE";
    if (command == 33) return "COM_SUBSCRIBE_GROUP_REPLICATION_STREAM";
  } else {
    switch (command) {
      case 250:
        return "COM_STMT_BULK_EXECUTE";
      case 251:
        return "COM_SLAVE_WORKER";
      case 252:
        return "COM_SLAVE_IO";
      case 253:
        return "COM_SLAVE_SQL";
      case 254:
        return "COM_MULTI";
      default:
        break;
    }
  }
  return fmt::format("COM_{}", command);
}

Result<mysqld_abi> detect_signature(std::string_view symbol,
                                    const std::optional<ServerVersion>& version) {
  // dispatch_command(enum_server_command, THD*, char*, unsigned int[, bool])
  if (symbol.starts_with("_Z16dispatch_command19enum_server_command")) return MYSQLD_ABI_LEGACY;
  // dispatch_command(THD*, COM_DATA const*, enum_server_command)
  if (symbol.starts_with("_Z16dispatch_command") && symbol.find("8COM_DATA") != symbol.npos) {
    return MYSQLD_ABI_COM_DATA;
  }
  if (version) {
    if (version->flavor == Flavor::kMariaDb) return MYSQLD_ABI_LEGACY;
    if (version->version >= "5.7") return MYSQLD_ABI_COM_DATA;
    return MYSQLD_ABI_LEGACY;
  }
  return make_error(
      "cannot tell the signature of '{}': its name is not a mangled "
      "dispatch_command and the binary has no MySQL/MariaDB version string",
      symbol.empty() ? "the function at --offset" : std::string(symbol));
}

const char* signature_name(mysqld_abi abi) {
  return abi == MYSQLD_ABI_LEGACY ? "dispatch_command(enum_server_command, THD*, char*, uint, ...)"
                                  : "dispatch_command(THD*, const COM_DATA*, enum_server_command)";
}

bool is_statement_command(uint32_t command) {
  switch (command) {
    case MYSQLD_COM_STMT_EXECUTE:
    case MYSQLD_COM_STMT_SEND_LONG_DATA:
    case MYSQLD_COM_STMT_CLOSE:
    case MYSQLD_COM_STMT_RESET:
    case MYSQLD_COM_STMT_FETCH:
    case MYSQLD_COM_STMT_BULK_EXECUTE:
      return true;
    default:
      return false;
  }
}

size_t CommandAssembler::statements() const {
  return std::accumulate(conns_.begin(), conns_.end(), size_t{0},
                         [](size_t n, const auto& kv) { return n + kv.second.statements.size(); });
}

Result<void> CommandAssembler::add(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(const mysqld_event h, bpf::read_struct<mysqld_event>(record, "mysqld"));
  ASSIGN_OR_RETURN(const std::span<const uint8_t> payload,
                   bpf::payload_after<mysqld_event>(record, h.data_len, MYSQLD_CHUNK, "mysqld"));
  std::string_view data(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (h.kind == MYSQLD_RECORD_END) {
    finish(h, data);
    return {};
  }
  if (h.kind != MYSQLD_RECORD_DATA) return make_error("unknown mysqld record kind {}", h.kind);
  auto it = pending_.find(h.tid);
  if (h.offset == 0 || it == pending_.end() || it->second.start_ns != h.timestamp_ns) {
    Pending p;
    p.thd = h.thd;
    p.start_ns = h.timestamp_ns;
    p.data.reserve(static_cast<size_t>(std::min<uint64_t>(h.total_len, MYSQLD_CAPTURE_MAX)));
    it = pending_.insert_or_assign(h.tid, std::move(p)).first;
  }
  it->second.data.append(data);
  return {};
}

void CommandAssembler::finish(const mysqld_event& h, std::string_view errmsg) {
  std::string packet;
  if (auto it = pending_.find(h.tid); it != pending_.end()) {
    if (it->second.start_ns == h.timestamp_ns) packet = std::move(it->second.data);
    pending_.erase(it);
  }
  AuditEvent e;
  e.timestamp_ns = static_cast<uint64_t>(static_cast<int64_t>(h.timestamp_ns) + mono_to_wall_ns_);
  e.pid = h.pid;
  e.tid = h.tid;
  e.uid = h.uid;
  e.comm.assign(h.comm, strnlen(h.comm, sizeof(h.comm)));
  e.cgroup = CgroupResolver::host().lookup(h.cgroup_id);
  e.kind = "mysqld";
  e.type = command_name(h.command, flavor_);
  e.duration_ns = h.duration_ns;
  e.status = (h.flags & MYSQLD_F_ERROR) ? static_cast<int64_t>(h.sql_errno) : 0;

  const ConnKey key{h.pid, h.thd};
  if (is_statement_command(h.command)) {
    uint32_t id = 0;
    if (packet.size() >= 4) {
      id = static_cast<uint8_t>(packet[0]) | static_cast<uint8_t>(packet[1]) << 8 |
           static_cast<uint8_t>(packet[2]) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(packet[3])) << 24;
    }
    auto conn = conns_.find(key);
    // MariaDB: id 0xffffffff means the statement prepared last on this connection.
    if (id == 0xffffffffu && conn != conns_.end()) id = conn->second.last_prepared;
    e.attrs.emplace_back("stmt_id", std::to_string(id));
    if (conn != conns_.end()) {
      if (auto s = conn->second.statements.find(id); s != conn->second.statements.end()) {
        e.text = s->second;
      }
    }
    if (h.command == MYSQLD_COM_STMT_CLOSE && conn != conns_.end()) {
      conn->second.statements.erase(id);
    }
    e.text_length = e.text.size();
  } else {
    e.text = std::move(packet);
    e.text_length = h.total_len;
    if (h.command == MYSQLD_COM_STMT_PREPARE && (h.flags & MYSQLD_F_STMT_ID)) {
      e.attrs.emplace_back("stmt_id", std::to_string(h.stmt_id));
      if (conns_.size() >= 65536 && !conns_.contains(key)) conns_.clear();  // bounded
      Connection& c = conns_[key];
      if (c.statements.size() >= 4096) c.statements.erase(c.statements.begin());
      c.statements[h.stmt_id] = e.text;
      c.last_prepared = h.stmt_id;
    }
    // The connection ends or forgets its statements.
    if (h.command == 1 /* COM_QUIT */ || h.command == 17 /* COM_CHANGE_USER */ ||
        h.command == 31 /* COM_RESET_CONNECTION */) {
      conns_.erase(key);
    }
  }
  if (h.flags & MYSQLD_F_ERROR) e.attrs.emplace_back("error", std::string(errmsg));
  emit_(std::move(e));
}

}  // namespace ecapture::mysqld
