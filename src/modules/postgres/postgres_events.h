// The postgres module's pure logic: assembly of kernel records into one AuditEvent per
// statement, de-duplicating the Parse/Bind/Execute reports of one extended-protocol statement.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "events/audit_event.h"
#include "modules/postgres/postgres_abi.h"

namespace ecapture::postgres {

// A backend reports a statement when it starts running it: once for a simple query, and for the
// extended protocol at Parse, Bind and Execute (the same text each time). Texts reported between
// two idle reports form the backend's busy period; consecutive equal texts in it are one
// statement. A statement is emitted when the next one starts or the backend goes idle, so its
// duration is known. Parallel workers repeat their leader's statement and are ignored.
class StatementAssembler {
 public:
  using Emit = std::function<void(AuditEvent&&)>;
  StatementAssembler(int64_t mono_to_wall_ns, Emit emit)
      : mono_to_wall_ns_(mono_to_wall_ns), emit_(std::move(emit)) {}

  Result<void> add(std::span<const uint8_t> record);
  // Emits every statement still open (shutdown); their duration is unknown.
  void flush();
  size_t open_statements() const;
  uint64_t ignored_parallel_workers() const { return ignored_workers_; }

 private:
  struct Statement {
    uint64_t start_ns = 0;
    uint32_t tid = 0, uid = 0;
    uint64_t cgroup_id = 0;
    std::string comm;
    std::string text;
    bool truncated = false;
  };
  struct Backend {
    std::vector<Statement> busy;  // started and not yet emitted, in order
  };
  struct Reading {  // a text arriving in chunks
    Statement stmt;
    uint64_t mono_ns = 0;
    bool ignore = false;
  };
  void text_complete(uint32_t pid, uint8_t hook, Reading&& r);
  void emit_statement(uint32_t pid, Statement&& s, uint64_t end_ns, bool end_known);

  int64_t mono_to_wall_ns_;
  Emit emit_;
  std::unordered_map<uint32_t, Reading> reading_;   // by tid
  std::unordered_map<uint32_t, Backend> backends_;  // by pid
  uint64_t ignored_workers_ = 0;
};

}  // namespace ecapture::postgres
