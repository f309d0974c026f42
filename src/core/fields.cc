// FieldTable: the command line, JSON in and JSON out of a module's settings, from its rows.
#include "core/fields.h"

#include <memory>

#include <CLI/CLI.hpp>

#include "core/config.h"
#include "core/config_json.h"

namespace ecapture {
namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::string join_words(const std::vector<std::string>& words) {
  std::string joined;
  for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
  return joined;
}

// The JSON name among a row's alternatives that the body uses; "both given" is an error.
Result<const std::string*> given_name(const FieldRow& row, const JsonFields& f) {
  const std::string* given = nullptr;
  for (const auto& name : row.json) {
    if (!f.has(name)) continue;
    if (given != nullptr) {
      return make_error("fields '{}' and '{}' both given: give one", *given, name);
    }
    given = &name;
  }
  return given;
}

}  // namespace

std::function<void(ModuleConfig&)> FieldTable::add_cli(CLI::App& app, ModuleConfig& cfg) const {
  std::vector<std::function<void(ModuleConfig&)>> finish;
  for (const FieldRow& row : rows) {
    if (row.flag.empty()) continue;
    CLI::Option* opt = nullptr;
    std::visit(
        Overloaded{
            [&](const FieldRow::Text& ref) {
              if (!row.positional) {
                opt = app.add_option(row.flag, ref(cfg), row.help);
                return;
              }
              auto words = std::make_shared<std::vector<std::string>>();
              opt = app.add_option(row.flag, *words, row.help);
              finish.push_back([words, ref](ModuleConfig& out) { ref(out) = join_words(*words); });
            },
            [&](const FieldRow::Number& ref) {
              opt = app.add_option(row.flag, ref(cfg), row.help);
              if (row.max != UINT64_MAX) opt->check(CLI::Range(uint64_t{0}, row.max));
            },
            [&](const FieldRow::Flag& ref) { opt = app.add_flag(row.flag, ref(cfg), row.help); },
            [&](const FieldRow::ExitStatus& ref) {
              // Range-checked by the module's own check, whose message names the meaning.
              auto value = std::make_shared<int>(0);
              opt = app.add_option(row.flag, *value, row.help);
              finish.push_back([value, ref, opt](ModuleConfig& out) {
                if (opt->count() > 0) ref(out) = *value;
              });
            },
        },
        row.ref);
    if (!row.default_text.empty()) opt->default_str(row.default_text);
  }
  return [finish = std::move(finish)](ModuleConfig& out) {
    for (const auto& f : finish) f(out);
  };
}

Result<void> FieldTable::from_json(JsonFields& f, ModuleConfig& cfg) const {
  for (const FieldRow& row : rows) {
    if (row.json.empty()) continue;
    ASSIGN_OR_RETURN(const std::string* name, given_name(row, f));
    // Every alternative is read, so that none is reported as unknown.
    for (const auto& n : row.json) {
      if (&n != name) f.ignore({n});
    }
    if (name == nullptr) continue;
    RETURN_IF_ERROR(std::visit(
        Overloaded{
            [&](const FieldRow::Text& ref) -> Result<void> {
              RETURN_IF_ERROR(f.get(*name, ref(cfg)));
              if (row.existing_file) RETURN_IF_ERROR(check_file_field(*name, ref(cfg)));
              return {};
            },
            [&](const FieldRow::Number& ref) { return f.get_uint(*name, ref(cfg), row.max); },
            [&](const FieldRow::Flag& ref) { return f.get(*name, ref(cfg)); },
            [&](const FieldRow::ExitStatus& ref) -> Result<void> {
              uint64_t v = 0;
              RETURN_IF_ERROR(f.get_uint(*name, v, row.max));
              const bool ecapture_all = name == &row.json.back() && row.json.size() > 1 && v == 128;
              ref(cfg) = ecapture_all ? std::nullopt : std::optional<int>(static_cast<int>(v));
              return {};
            },
        },
        row.ref));
  }
  RETURN_IF_ERROR(f.accept_unused(json_unused));
  f.ignore(json_ignored);
  return {};
}

void FieldTable::to_json(const ModuleConfig& cfg, nlohmann::json& j) const {
  auto& c = const_cast<ModuleConfig&>(cfg);  // the refs only read here
  for (const FieldRow& row : rows) {
    if (row.json.empty()) continue;
    const std::string& name = row.json.front();
    std::visit(Overloaded{
                   [&](const FieldRow::Text& ref) { j[name] = ref(c); },
                   [&](const FieldRow::Number& ref) { j[name] = ref(c); },
                   [&](const FieldRow::Flag& ref) { j[name] = ref(c); },
                   [&](const FieldRow::ExitStatus& ref) {
                     const auto& v = ref(c);
                     j[name] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
                   },
               },
               row.ref);
  }
}

}  // namespace ecapture
