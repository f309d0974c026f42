// Human-readable rendering of an AuditEvent (shell commands, SQL statements).
#pragma once

#include <string>

#include "events/audit_event.h"
#include "output/text_encoder.h"

namespace ecapture {

// Block layout (stable, tests parse it):
//   [YYYY-MM-DD HH:MM:SS.ffffff] KIND pid=P tid=T uid=U comm=C type=TYPE status=S|?
//       duration_ns=D|?[ key=value ...] len=N[ shown=S][ hex]
//   (one line), then S raw bytes of text and "\n", or hex dump lines and an empty line.
// N is the original length of the text; shown=S appears when fewer bytes are printed (-t, or
// not all was captured). Attribute values with spaces, quotes, '=' or control characters are
// printed as a JSON string ("...").
std::string encode_audit_text(const AuditEvent& e, const TextOptions& opt);

// A value as printed in the header: as is, or JSON-quoted when it needs it.
std::string audit_attr_value(const std::string& v);

}  // namespace ecapture
