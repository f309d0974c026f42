// A module's settings as data: one row per setting names its command-line flag, its JSON names,
// its help and its checks. The CLI options, the API's JSON parsing, the configuration shown in
// /status and the field errors are all produced from the rows, so a module states each setting
// once.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/result.h"

namespace CLI {
class App;
}

namespace ecapture {

class JsonFields;
class ModuleConfig;

// One setting. `ref` reaches the member it is stored in.
struct FieldRow {
  using Text = std::function<std::string&(ModuleConfig&)>;
  using Number = std::function<uint64_t&(ModuleConfig&)>;
  using Flag = std::function<bool&(ModuleConfig&)>;
  // An exit status filter: unset shows every command. Under eCapture's JSON name (the row's last)
  // 128 also means unset, as in eCapture.
  using ExitStatus = std::function<std::optional<int>&(ModuleConfig&)>;

  std::variant<Text, Number, Flag, ExitStatus> ref;
  std::string flag;               // CLI11 names ("-m,--model"); empty: not on the command line
  std::vector<std::string> json;  // JSON names, alternatives ("both given" is refused); the first
                                  // is shown in /status; empty: not in JSON
  std::string help;
  std::string default_text;    // shown in --help
  uint64_t max = UINT64_MAX;   // Number and ExitStatus rows
  bool existing_file = false;  // Text: a non-empty JSON value must name a regular file
  bool positional = false;     // Text: the trailing words of the command line, joined by spaces
};

// The rows of one module's configuration plus its checks across fields.
struct FieldTable {
  std::vector<FieldRow> rows;
  // Checks across fields, in the command line's terms (run by ModuleConfig::validate()).
  std::function<Result<void>(const ModuleConfig&)> check;
  // Checks of a JSON body, in its field names, after every field was read.
  std::function<Result<void>(const ModuleConfig&)> check_json;
  // eCapture fields with no use here: accepted at their zero value only.
  std::vector<std::string> json_unused;
  // eCapture fields accepted with any value and ignored.
  std::vector<std::string> json_ignored;

  // Adds the rows' options to `app`, bound to `cfg` (which must outlive the parse). The returned
  // function completes `out` (a copy of cfg) after parsing: trailing words, exit statuses.
  std::function<void(ModuleConfig& out)> add_cli(CLI::App& app, ModuleConfig& cfg) const;
  // Reads every row from `f` into `cfg`, then the unused and ignored names (not finish()).
  Result<void> from_json(JsonFields& f, ModuleConfig& cfg) const;
  void to_json(const ModuleConfig& cfg, nlohmann::json& j) const;
};

// Builds a table for one config type, from member pointers (members of its bases work too).
template <typename Config>
class FieldTableBuilder {
 public:
  FieldTableBuilder& text(std::string Config::*m, FieldRow row) {
    row.ref = FieldRow::Text([m](ModuleConfig& c) -> std::string& { return as(c).*m; });
    return add(std::move(row));
  }
  // A path that must name an existing file (checked for JSON values too).
  FieldTableBuilder& file(std::string Config::*m, std::string flag, std::vector<std::string> json,
                          std::string help) {
    return text(m, {.flag = std::move(flag),
                    .json = std::move(json),
                    .help = std::move(help),
                    .existing_file = true});
  }
  FieldTableBuilder& number(uint64_t Config::*m, FieldRow row) {
    row.ref = FieldRow::Number([m](ModuleConfig& c) -> uint64_t& { return as(c).*m; });
    return add(std::move(row));
  }
  FieldTableBuilder& flag(bool Config::*m, FieldRow row) {
    row.ref = FieldRow::Flag([m](ModuleConfig& c) -> bool& { return as(c).*m; });
    return add(std::move(row));
  }
  FieldTableBuilder& exit_status(std::optional<int> Config::*m, FieldRow row) {
    row.ref =
        FieldRow::ExitStatus([m](ModuleConfig& c) -> std::optional<int>& { return as(c).*m; });
    return add(std::move(row));
  }
  FieldTableBuilder& check(std::function<Result<void>(const Config&)> f) {
    table_.check = chain(std::move(table_.check), std::move(f));
    return *this;
  }
  FieldTableBuilder& check_json(std::function<Result<void>(const Config&)> f) {
    table_.check_json = chain(std::move(table_.check_json), std::move(f));
    return *this;
  }
  FieldTableBuilder& json_unused(std::vector<std::string> names) {
    table_.json_unused.insert(table_.json_unused.end(), names.begin(), names.end());
    return *this;
  }
  FieldTableBuilder& json_ignored(std::vector<std::string> names) {
    table_.json_ignored.insert(table_.json_ignored.end(), names.begin(), names.end());
    return *this;
  }
  FieldTable build() { return std::move(table_); }

 private:
  static Config& as(ModuleConfig& c) { return static_cast<Config&>(c); }
  FieldTableBuilder& add(FieldRow row) {
    table_.rows.push_back(std::move(row));
    return *this;
  }
  static std::function<Result<void>(const ModuleConfig&)> chain(
      std::function<Result<void>(const ModuleConfig&)> before,
      std::function<Result<void>(const Config&)> f) {
    return [before = std::move(before), f = std::move(f)](const ModuleConfig& c) -> Result<void> {
      if (before) RETURN_IF_ERROR(before(c));
      return f(static_cast<const Config&>(c));
    };
  }

  FieldTable table_;
};

// The table of `Config`, built once, on first use, by `build(builder)`.
template <typename Config, typename Build>
const FieldTable& field_table(Build&& build) {
  static const FieldTable table = [&] {
    FieldTableBuilder<Config> b;
    build(b);
    return b.build();
  }();
  return table;
}

}  // namespace ecapture
