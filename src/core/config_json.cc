// JSON field readers and the shared (global) part of every module's API configuration.
#include "core/config_json.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>

#include "core/cgroup.h"

namespace ecapture {

std::string json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::number_float: return "a fractional number";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

namespace {
Error wrong_type(std::string_view name, std::string_view expected, const nlohmann::json& v) {
  return make_error("field '{}': expected {}, got {} ({})", name, expected, json_type_name(v),
                    v.dump().substr(0, 60));
}

bool is_zero_value(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return true;
    case nlohmann::json::value_t::boolean: return !v.get<bool>();
    case nlohmann::json::value_t::string: return v.get_ref<const std::string&>().empty();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: return v == 0;
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object: return v.empty();
    default: return false;
  }
}
}  // namespace

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

// Names match case-insensitively, as eCapture's Go decoder (encoding/json) does.
const nlohmann::json* JsonFields::find(std::string_view name) {
  const std::string key = lower(name);
  known_.insert(key);
  if (!j_.is_object()) return nullptr;
  for (const auto& [k, v] : j_.items()) {
    if (lower(k) == key) return v.is_null() ? nullptr : &v;
  }
  return nullptr;
}

bool JsonFields::has(std::string_view name) const {
  const std::string key = lower(name);
  if (!j_.is_object()) return false;
  for (const auto& [k, v] : j_.items()) {
    if (lower(k) == key) return !v.is_null();
  }
  return false;
}

Result<void> JsonFields::get(std::string_view name, std::string& out) {
  const nlohmann::json* v = find(name);
  if (v == nullptr) return {};
  if (!v->is_string()) return wrong_type(name, "a string", *v);
  out = v->get<std::string>();
  return {};
}

Result<void> JsonFields::get(std::string_view name, bool& out) {
  const nlohmann::json* v = find(name);
  if (v == nullptr) return {};
  if (!v->is_boolean()) return wrong_type(name, "true or false", *v);
  out = v->get<bool>();
  return {};
}

Result<void> JsonFields::get(std::string_view name, std::vector<std::string>& out) {
  const nlohmann::json* v = find(name);
  if (v == nullptr) return {};
  if (!v->is_array()) return wrong_type(name, "an array of strings", *v);
  std::vector<std::string> items;
  for (const auto& item : *v) {
    if (!item.is_string()) return wrong_type(name, "an array of strings", item);
    items.push_back(item.get<std::string>());
  }
  out = std::move(items);
  return {};
}

Result<void> JsonFields::get_uint(std::string_view name, uint64_t& out, uint64_t max) {
  const nlohmann::json* v = find(name);
  if (v == nullptr) return {};
  if (v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0)) {
    uint64_t value = v->get<uint64_t>();
    if (value > max) {
      return make_error("field '{}': {} is out of range (at most {})", name, value, max);
    }
    out = value;
    return {};
  }
  return wrong_type(name, "a non-negative integer", *v);
}

Result<void> JsonFields::accept_unused(std::initializer_list<std::string_view> names) {
  return accept_unused(std::vector<std::string>(names.begin(), names.end()));
}

Result<void> JsonFields::accept_unused(const std::vector<std::string>& names) {
  for (std::string_view name : names) {
    const nlohmann::json* v = find(name);
    if (v != nullptr && !is_zero_value(*v)) {
      return make_error("field '{}': not supported by this build (only its empty/zero value is "
                        "accepted, got {})", name, v->dump().substr(0, 60));
    }
  }
  return {};
}

void JsonFields::ignore(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) known_.insert(lower(name));
}

void JsonFields::ignore(const std::vector<std::string>& names) {
  for (std::string_view name : names) known_.insert(lower(name));
}

Result<void> JsonFields::finish() const {
  if (!j_.is_object()) return make_error("the configuration must be a JSON object");
  std::set<std::string> seen;
  for (const auto& [key, value] : j_.items()) {
    const std::string k = lower(key);
    if (!seen.insert(k).second) {
      return make_error("field '{}' is given twice (field names are case-insensitive)", key);
    }
    if (known_.find(k) == known_.end()) {
      return make_error("unknown field '{}': not a configuration field of this module", key);
    }
  }
  return {};
}

Result<void> check_file_field(std::string_view field, const std::string& path) {
  if (path.empty()) return {};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_errno_error(errno, "field '{}': cannot use {}", field, path);
  }
  if (!S_ISREG(st.st_mode)) return make_error("field '{}': {} is not a regular file", field, path);
  return {};
}

uint64_t bytes_to_pages(uint64_t bytes, uint64_t page_size) {
  return bytes / page_size + (bytes % page_size != 0 ? 1 : 0);
}

Result<void> global_from_json(JsonFields& f, const GlobalConfig& defaults, GlobalConfig& out) {
  out = defaults;
  RETURN_IF_ERROR(f.get_uint("pid", out.pid, 0x7fffffffu));
  RETURN_IF_ERROR(f.get_uint("uid", out.uid, 0xffffffffu));
  RETURN_IF_ERROR(f.get("cgroup_path", out.cgroup_path));
  if (!out.cgroup_path.empty()) {
    if (auto r = resolve_cgroup_dir(out.cgroup_path); !r) {
      return make_error("field 'cgroup_path': {}", r.error().message);
    }
  }
  RETURN_IF_ERROR(f.get("debug", out.debug));
  RETURN_IF_ERROR(f.get("is_hex", out.hex));
  RETURN_IF_ERROR(f.get("btf_mode", out.btf));
  if (out.btf > 2) {
    return make_error("field 'btf_mode': {} is not allowed: 0 (auto), 1 (CO-RE), 2 (non-CO-RE)",
                      out.btf);
  }
  if (out.btf == static_cast<uint8_t>(BtfMode::kNonCore)) {
    return make_error("field 'btf_mode': 2 (non-CO-RE bytecode) is not shipped: ecapture has "
                      "CO-RE objects only; give a BTF file with field 'btf_file' instead");
  }
  RETURN_IF_ERROR(f.get("btf_file", out.btf_file));
  if (f.has("per_cpu_map_size") && f.has("map_size")) {
    return make_error("fields 'per_cpu_map_size' (bytes) and 'map_size' (pages) both given: "
                      "give one");
  }
  uint64_t bytes = 0;
  RETURN_IF_ERROR(f.get_uint("per_cpu_map_size", bytes));
  if (f.has("per_cpu_map_size")) {
    const long page = ::sysconf(_SC_PAGESIZE);
    const uint64_t page_size = page > 0 ? static_cast<uint64_t>(page) : 4096;
    if (bytes == 0 || bytes_to_pages(bytes, page_size) > (1u << 20)) {
      return make_error("field 'per_cpu_map_size': {} bytes is out of range (1..{} bytes per "
                        "CPU)", bytes, page_size << 20);
    }
    out.mapsize = bytes_to_pages(bytes, page_size);
  }
  RETURN_IF_ERROR(f.get_uint("map_size", out.mapsize, 1u << 20));
  if (out.mapsize == 0) {
    return make_error("field 'map_size': 0 is out of range (1..1048576 pages per CPU)");
  }
  RETURN_IF_ERROR(f.get_uint("truncate_size", out.tsize));
  std::string logaddr = defaults.logaddr;
  RETURN_IF_ERROR(f.get("logger_addr", logaddr));
  if (logaddr != defaults.logaddr && !logaddr.empty()) {
    return make_error("field 'logger_addr': the runtime log destination cannot change on a "
                      "reload (it is '{}'; restart ecapture with -l to change it)",
                      defaults.logaddr);
  }
  // eCapture's base fields with no effect here when left at their zero values.
  RETURN_IF_ERROR(f.accept_unused({"byte_code_file_mode", "event_collector_addr", "ecapture_q",
                                   "addr_type", "perf_reorder", "perf_reorder_lag_ms"}));
  // The API's own address is part of eCapture's config; it cannot change through the API.
  f.ignore({"listen"});
  return {};
}

}  // namespace ecapture
