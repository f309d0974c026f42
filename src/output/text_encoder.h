// Human-readable rendering of a DataEvent: one header line, then the payload as raw text, or as
// a hex dump when asked (--hex) or when the payload is not text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "events/event.h"

namespace ecapture {

struct TextOptions {
  bool hex = false;    // always dump as hex
  uint64_t tsize = 0;  // show at most this many bytes (0: all)
};

// Block layout (stable, tests parse it):
//   [YYYY-MM-DD HH:MM:SS.ffffff] DIR pid=P tid=T uid=U comm=C[ container=ID] fd=F SRC -> DST len=N
//   [ shown=S][ hex], then S raw bytes and "\n", or hex dump lines and an empty line.
std::string encode_text(const DataEvent& e, const TextOptions& opt);

// " container=<short id>" when the cgroup names a container, else "".
std::string container_tag(const CgroupInfo* cgroup);

// "%08x  xx xx ... |ascii|" lines, 16 bytes per line.
std::string hex_dump(std::string_view data);

// True when the bytes are printable text (UTF-8 or ASCII with \r \n \t).
bool looks_like_text(std::string_view data);

// Local wall-clock time with microseconds, "2026-11-20 22:13:05.123456".
std::string format_timestamp(uint64_t wall_ns);

}  // namespace ecapture
