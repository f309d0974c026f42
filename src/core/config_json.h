// JSON → module configuration for the HTTP API: typed field readers whose errors name the JSON
// field, a check for unknown fields, and the fields every module shares (eCapture's names).
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/result.h"

namespace ecapture {

// Reads the members of one JSON object. Names match case-insensitively (as eCapture's Go decoder
// does: "ErrNo" = "errno"). Every read marks the member as known; finish() names the first member
// nobody read. Errors say which field and what was expected.
class JsonFields {
 public:
  explicit JsonFields(const nlohmann::json& object) : j_(object) {}

  // Each get leaves `out` unchanged when the field is absent (or null). `name` is lower case.
  Result<void> get(std::string_view name, std::string& out);
  Result<void> get(std::string_view name, bool& out);
  Result<void> get(std::string_view name, std::vector<std::string>& out);
  // Non-negative integers only (no floats, no strings), at most `max`.
  Result<void> get_uint(std::string_view name, uint64_t& out, uint64_t max = UINT64_MAX);
  template <typename T>
    requires std::is_unsigned_v<T> && (!std::is_same_v<T, bool>)
  Result<void> get(std::string_view name, T& out) {
    uint64_t v = out;
    RETURN_IF_ERROR(get_uint(name, v, std::numeric_limits<T>::max()));
    out = static_cast<T>(v);
    return {};
  }

  bool has(std::string_view name) const;
  // eCapture fields this build has no use for: accepted when absent, null or the zero value of
  // their type (false, 0, "", [], {}) — what eCapture clients send by default — refused otherwise.
  Result<void> accept_unused(std::initializer_list<std::string_view> names);
  Result<void> accept_unused(const std::vector<std::string>& names);
  // Fields accepted with any value and ignored (documented per field where they are accepted).
  void ignore(std::initializer_list<std::string_view> names);
  void ignore(const std::vector<std::string>& names);
  // Refuses the first member not read, ignored or accepted.
  Result<void> finish() const;

 private:
  const nlohmann::json* find(std::string_view name);

  const nlohmann::json& j_;
  std::set<std::string, std::less<>> known_;
};

// The fields shared by every module (eCapture's base config), starting from `defaults`:
// pid, uid, debug, is_hex, btf_mode, btf_file, per_cpu_map_size (bytes, rounded up to whole pages
// for --mapsize) or map_size (pages), truncate_size, logger_addr (must stay as started), and
// eCapture's unused base fields. Values are range-checked here with the JSON field named.
Result<void> global_from_json(JsonFields& fields, const GlobalConfig& defaults, GlobalConfig& out);

// A path field, when non-empty, must name an existing regular file (the error names the field).
Result<void> check_file_field(std::string_view field, const std::string& path);

// Per-CPU buffer bytes (eCapture's per_cpu_map_size) → pages (our --mapsize), rounded up.
uint64_t bytes_to_pages(uint64_t bytes, uint64_t page_size);

// JSON type name for error messages ("string", "number", ...).
std::string json_type_name(const nlohmann::json& v);

}  // namespace ecapture
