// An audit record: one shell command or one SQL statement, with its outcome.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/cgroup.h"

namespace ecapture {

struct AuditEvent {
  static constexpr int64_t kStatusUnknown = std::numeric_limits<int64_t>::min();
  static constexpr uint64_t kDurationUnknown = std::numeric_limits<uint64_t>::max();

  uint64_t timestamp_ns = 0;  // wall clock, ns since the epoch
  std::string kind;           // record tag: "BASH", "ZSH", "MYSQLD", "POSTGRES"
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint32_t uid = 0;
  std::string comm;
  std::string type;  // e.g. "COM_QUERY"; for shells the kind of line editor read
  int64_t status = kStatusUnknown;
  uint64_t duration_ns = kDurationUnknown;
  std::vector<std::pair<std::string, std::string>> attrs;  // extra header fields, in order
  std::string text;          // the command or statement as captured
  uint64_t text_length = 0;  // its original length when more than text.size() (0: same)
  std::string source;        // module that produced it
  std::shared_ptr<const CgroupInfo> cgroup;  // the process's cgroup; null when unknown
};

struct ModuleCounters;
class EventSink;

// The end of every audit module's path: counts `e` in `c` and hands it to `sink` (may be null).
void deliver_audit(ModuleCounters& c, EventSink* sink, const AuditEvent& e);

}  // namespace ecapture
