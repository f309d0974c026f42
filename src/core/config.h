// Configuration shared by every module (eCapture's global flags) and the module config base.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace ecapture {

enum class BtfMode : uint8_t { kAuto = 0, kCore = 1, kNonCore = 2 };

struct GlobalConfig {
  uint64_t pid = 0;       // 0 = all processes (compared with the TGID in the kernel)
  uint64_t uid = 0;       // 0 = all users
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

// Base of every module's configuration. Concrete modules add their own fields.
class ModuleConfig {
 public:
  virtual ~ModuleConfig() = default;
  GlobalConfig global;

  // Validates the global part; modules extend it and call the base.
  virtual Result<void> validate() const { return global.validate(); }
  virtual std::unique_ptr<ModuleConfig> clone() const = 0;
  virtual nlohmann::json to_json() const { return global.to_json(); }
};

}  // namespace ecapture
