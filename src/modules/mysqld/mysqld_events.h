// The mysqld module's pure logic: command names, server flavour and dispatch_command signature
// detection, and the assembly of kernel records into one AuditEvent per command.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"
#include "events/audit_event.h"
#include "modules/mysqld/mysqld_abi.h"

namespace ecapture::mysqld {

enum class Flavor { kMariaDb, kMySql };

struct ServerVersion {
  Flavor flavor = Flavor::kMySql;
  std::string version;  // "10.11.19", "8.0"
  std::string display() const;  // "MariaDB 10.11.19", "MySQL 8.0"
};

// Finds the server's version string in its bytes: "10.11.19-MariaDB" (MariaDB), else
// "mysqld-8.0" / "mysqld-5.7" (MySQL). nullopt when there is none.
std::optional<ServerVersion> sniff_server_version(std::string_view bytes);

// enum_server_command value -> "COM_QUERY", ...; unknown values give "COM_<n>".
std::string command_name(uint32_t command, Flavor flavor);

// Which signature the hooked function has. `symbol` is the (mangled) name hooked, empty when
// hooking by address. Error when neither the name nor the version tells.
Result<mysqld_abi> detect_signature(std::string_view symbol,
                                    const std::optional<ServerVersion>& version);
const char* signature_name(mysqld_abi abi);

// True when the command's packet starts with a statement id (COM_STMT_EXECUTE, ...).
bool is_statement_command(uint32_t command);

// Collects the packet chunks of each thread's command and emits one AuditEvent when its END
// record arrives. Keeps, per connection (pid, THD*), the text of each prepared statement, so
// that COM_STMT_EXECUTE and friends show it.
class CommandAssembler {
 public:
  using Emit = std::function<void(AuditEvent&&)>;
  CommandAssembler(Flavor flavor, int64_t mono_to_wall_ns, Emit emit)
      : flavor_(flavor), mono_to_wall_ns_(mono_to_wall_ns), emit_(std::move(emit)) {}

  // One record from the event map. Malformed records are an error (and dropped).
  Result<void> add(std::span<const uint8_t> record);
  size_t pending() const { return pending_.size(); }
  size_t statements() const;

 private:
  struct Pending {
    uint64_t thd = 0;
    uint64_t start_ns = 0;
    std::string data;
  };
  struct Connection {
    std::map<uint32_t, std::string> statements;  // id -> text
    uint32_t last_prepared = 0;
  };
  using ConnKey = std::pair<uint32_t, uint64_t>;  // pid, THD*
  struct ConnKeyHash {
    size_t operator()(const ConnKey& k) const {
      return std::hash<uint64_t>()(k.second ^ (static_cast<uint64_t>(k.first) << 48));
    }
  };
  void finish(const mysqld_event& h, std::string_view errmsg);

  Flavor flavor_;
  int64_t mono_to_wall_ns_;
  Emit emit_;
  std::unordered_map<uint32_t, Pending> pending_;  // by tid
  std::unordered_map<ConnKey, Connection, ConnKeyHash> conns_;
};

}  // namespace ecapture::mysqld
