// Record assembly for the postgres module.
#include "modules/postgres/postgres_events.h"

#include <cstring>

#include "bpf/record.h"

namespace ecapture::postgres {

static_assert(sizeof(postgres_event) == 112 && offsetof(postgres_event, cgroup_id) == 104,
              "ABI: postgres_event size, cgroup_id offset");
static_assert(offsetof(postgres_event, kind) == 36, "ABI: kind offset");
static_assert(offsetof(postgres_event, comm) == 40, "ABI: comm offset");
static_assert(offsetof(postgres_event, title) == 56, "ABI: title offset");

size_t StatementAssembler::open_statements() const {
  size_t n = 0;
  for (const auto& [pid, b] : backends_) n += b.busy.size();
  return n;
}

Result<void> StatementAssembler::add(std::span<const uint8_t> record) {
  ASSIGN_OR_RETURN(const postgres_event h, bpf::read_struct<postgres_event>(record, "postgres"));
  ASSIGN_OR_RETURN(
      const std::span<const uint8_t> payload,
      bpf::payload_after<postgres_event>(record, h.data_len, POSTGRES_CHUNK, "postgres"));
  if (h.kind == POSTGRES_RECORD_STATE) {
    // Idle (or another state without text): the busy period ends.
    if (auto it = backends_.find(h.pid); it != backends_.end()) {
      auto busy = std::move(it->second.busy);
      backends_.erase(it);
      for (size_t i = 0; i < busy.size(); ++i) {
        uint64_t end = i + 1 < busy.size() ? busy[i + 1].start_ns : h.timestamp_ns;
        emit_statement(h.pid, std::move(busy[i]), end, true);
      }
    }
    return {};
  }
  if (h.kind != POSTGRES_RECORD_TEXT) return make_error("unknown postgres record kind {}", h.kind);

  auto it = reading_.find(h.tid);
  if (h.offset == 0 || it == reading_.end()) {
    Reading r;
    r.mono_ns = h.timestamp_ns;
    r.stmt.start_ns = h.timestamp_ns;
    r.stmt.tid = h.tid;
    r.stmt.uid = h.uid;
    r.stmt.cgroup_id = h.cgroup_id;
    r.stmt.comm.assign(h.comm, strnlen(h.comm, sizeof(h.comm)));
    std::string title(h.title, strnlen(h.title, sizeof(h.title)));
    r.ignore = title.starts_with("postgres: parallel worker");
    it = reading_.insert_or_assign(h.tid, std::move(r)).first;
  }
  Reading& r = it->second;
  if (r.mono_ns == h.timestamp_ns) {
    r.stmt.text.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  }
  if (h.flags & POSTGRES_F_LAST) {
    r.stmt.truncated = (h.flags & POSTGRES_F_TRUNCATED) != 0;
    Reading done = std::move(r);
    reading_.erase(it);
    text_complete(h.pid, h.hook, std::move(done));
  }
  return {};
}

void StatementAssembler::text_complete(uint32_t pid, uint8_t hook, Reading&& r) {
  if (r.ignore) {
    ++ignored_workers_;
    return;
  }
  if (hook != POSTGRES_HOOK_ACTIVITY) {
    emit_statement(pid, std::move(r.stmt), 0, false);
    return;
  }
  Backend& b = backends_[pid];
  if (!b.busy.empty() && b.busy.back().text == r.stmt.text) return;  // Bind/Execute of it
  b.busy.push_back(std::move(r.stmt));
}

void StatementAssembler::emit_statement(uint32_t pid, Statement&& s, uint64_t end_ns,
                                        bool end_known) {
  AuditEvent e;
  e.timestamp_ns = static_cast<uint64_t>(static_cast<int64_t>(s.start_ns) + mono_to_wall_ns_);
  e.pid = pid;
  e.tid = s.tid;
  e.uid = s.uid;
  e.comm = std::move(s.comm);
  e.cgroup = CgroupResolver::host().lookup(s.cgroup_id);
  e.kind = "postgres";
  e.type = "QUERY";
  if (end_known && end_ns >= s.start_ns) e.duration_ns = end_ns - s.start_ns;
  e.text_length = s.text.size();
  e.text = std::move(s.text);
  if (s.truncated) e.attrs.emplace_back("truncated", "1");
  emit_(std::move(e));
}

void StatementAssembler::flush() {
  for (auto& [pid, b] : backends_) {
    for (auto& s : b.busy) emit_statement(pid, std::move(s), 0, false);
  }
  backends_.clear();
  reading_.clear();
}

}  // namespace ecapture::postgres
