// Validation of the global flags.
#include "core/config.h"

#include <sys/stat.h>

#include "core/cgroup.h"

namespace ecapture {

Result<void> GlobalConfig::validate() const {
  if (btf > 2) {
    return make_error("invalid value {} for --btf: allowed values are 0 (auto), 1 (CO-RE), 2 "
                      "(non-CO-RE)", btf);
  }
  if (btf == static_cast<uint8_t>(BtfMode::kNonCore)) {
    return make_error("--btf 2 (non-CO-RE bytecode) is not shipped: ecapture has CO-RE objects "
                      "only; on a kernel without /sys/kernel/btf/vmlinux pass its BTF with "
                      "--btf-file PATH");
  }
  if (!btf_file.empty()) {
    struct stat st {};
    if (::stat(btf_file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return make_error("--btf-file {}: no such file (give the path of a BTF file for this "
                        "kernel, e.g. from btfhub)", btf_file);
    }
  }
  if (mapsize == 0 || mapsize > (1u << 20)) {
    return make_error("invalid value {} for --mapsize: allowed 1..1048576 (pages per CPU)",
                      mapsize);
  }
  if (pid > 0x7fffffffu) {
    return make_error("invalid value {} for --pid: not a process id", pid);
  }
  if (uid > 0xffffffffu) {
    return make_error("invalid value {} for --uid: not a user id", uid);
  }
  if (!cgroup_path.empty()) {
    if (auto r = resolve_cgroup_dir(cgroup_path); !r) {
      return make_error("--cgroup_path {}", r.error().message);
    }
  }
  return {};
}

Result<void> ModuleConfig::validate() const {
  RETURN_IF_ERROR(global.validate());
  if (const auto& check = fields().check) RETURN_IF_ERROR(check(*this));
  return {};
}

nlohmann::json ModuleConfig::to_json() const {
  nlohmann::json j = global.to_json();
  fields().to_json(*this, j);
  return j;
}

nlohmann::json GlobalConfig::to_json() const {
  return nlohmann::json{{"pid", pid},         {"uid", uid},         {"debug", debug},
                        {"is_hex", hex},      {"btf_mode", btf},    {"btf_file", btf_file},
                        {"map_size", mapsize}, {"truncate_size", tsize},
                        {"logger_addr", logaddr}, {"cgroup_path", cgroup_path}};
}

}  // namespace ecapture
