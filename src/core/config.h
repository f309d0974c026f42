// Configuration shared by every module (eCapture's global flags) and the module config base.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/fields.h"
#include "core/result.h"

namespace ecapture {

enum class BtfMode : uint8_t { kAuto = 0, kCore = 1, kNonCore = 2 };

struct GlobalConfig {
  uint64_t pid = 0;       // 0 = all processes (compared with the TGID in the kernel)
  uint64_t uid = 0;       // 0 = all users
  std::string cgroup_path;  // "" = all cgroups; else a cgroup v2 directory (its whole subtree)
  bool debug = false;
  bool hex = false;
  uint8_t btf = 0;        // BtfMode as given on the command line
  std::string btf_file;   // custom BTF for kernels without /sys/kernel/btf/vmlinux
  uint64_t mapsize = 1024;  // per-CPU buffer size in pages (eCapture's meaning)
  uint64_t tsize = 0;     // truncate each message to this many bytes (0 = no limit)
  std::string logaddr;    // runtime log destination besides stderr (a file path)

  // Checks every field; the error names the flag and the allowed values.
  Result<void> validate() const;
  nlohmann::json to_json() const;
};

// Base of every module's configuration. Concrete modules add their own fields and describe them
// in their FieldTable; derive through ConfigOf<Self> for clone().
class ModuleConfig {
 public:
  virtual ~ModuleConfig() = default;
  GlobalConfig global;
  // eCapture's --perf-reorder/--perf-reorder-lag-ms (tls, gotls, mysqld, postgres): accepted for
  // drop-in use; the ring buffer already delivers in order, so they change nothing.
  bool perf_reorder = false;
  uint64_t perf_reorder_lag_ms = 0;

  virtual const FieldTable& fields() const = 0;
  virtual std::unique_ptr<ModuleConfig> clone() const = 0;
  // The global part, then the module's cross-field checks.
  Result<void> validate() const;
  // eCapture's JSON names: the global fields and the table's rows (for /status).
  nlohmann::json to_json() const;
};

template <typename Self, typename Base = ModuleConfig>
struct ConfigOf : Base {
  std::unique_ptr<ModuleConfig> clone() const override {
    return std::make_unique<Self>(static_cast<const Self&>(*this));
  }
};

// Rows for eCapture's --perf-reorder flags, for the modules that have them.
template <typename Config>
FieldTableBuilder<Config>& add_perf_reorder_rows(FieldTableBuilder<Config>& b) {
  return b
      .flag(&ModuleConfig::perf_reorder,
            {.flag = "--perf-reorder",
             .help = "accepted for eCapture compatibility: events already arrive in order"})
      .number(&ModuleConfig::perf_reorder_lag_ms,
              {.flag = "--perf-reorder-lag-ms",
               .help = "accepted for eCapture compatibility (see --perf-reorder)",
               .default_text = "0"});
}

}  // namespace ecapture
