// HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) from paired HTTP exchanges: one entry
// per row, the document around them, and the row JSON the web view shows.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "web/exchange.h"

namespace ecapture::web {

// One `log.entries[]` object. Rows without a request give null (HAR needs a request).
nlohmann::json har_entry(const Row& row);
// The `log` object's opening, as text up to and including `"entries":[`, and its closing: a
// HAR file is header + entries joined by commas + footer.
std::string har_header();
std::string har_footer();
// A whole HAR document of the rows that have a request.
nlohmann::json har_document(const std::vector<std::shared_ptr<Row>>& rows);

// "2026-11-20T22:31:23.758Z"
std::string iso8601_ms(uint64_t wall_ns);
// The URL of a request: scheme (HTTP/2 :scheme, else https: it was captured from TLS), host
// (Host/:authority, else the server address) and path.
std::string request_url(const Message& request);

}  // namespace ecapture::web
