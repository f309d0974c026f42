// Body decoding for HTTP Content-Encoding: gzip, deflate, br, zstd (chains like "gzip, br" too).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ecapture {

// Decodes `data` for the Content-Encoding value `encoding` (comma-separated, applied in order,
// decoded in reverse). Returns nullopt for an unknown coding, corrupt data, or output larger
// than `max_out` bytes. "identity" and "" return the input.
std::optional<std::string> decode_content(std::string_view encoding, std::string_view data,
                                          size_t max_out);

}  // namespace ecapture
