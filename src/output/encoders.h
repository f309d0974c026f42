// Encoders for finished messages and audit records: text (human), JSON lines, protobuf LogEntry.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "events/audit_event.h"
#include "events/message.h"

namespace ecapture {

enum class Format : uint8_t { kText, kJson, kProtobuf };

Result<Format> parse_format(std::string_view name);  // "text", "json", "protobuf"
const char* format_name(Format f);

// Text: the block documented in README.md (a raw block, plus " proto=…" for parsed messages).
std::string encode_message_text(const Message& m, bool hex);
// One JSON object and "\n".
std::string encode_message_json(const Message& m);
std::string encode_audit_json(const AuditEvent& e);
// A serialized LogEntry (LOG_TYPE_EVENT); no length prefix.
std::string encode_message_protobuf(const Message& m);
std::string encode_audit_protobuf(const AuditEvent& e);
// The module an audit record came from: its source, else its kind in lower case.
std::string audit_module(const AuditEvent& e);
std::string encode_log_protobuf(std::string_view line);
std::string encode_heartbeat_protobuf(int64_t unix_seconds, int64_t count);

// Varint length prefix + message: how protobuf goes over a byte stream (file, tcp).
std::string length_delimited(std::string_view message);

// Strict UTF-8 without control characters other than \t \r \n.
bool is_utf8_text(std::string_view s);
std::string base64_encode(std::string_view data);

}  // namespace ecapture
