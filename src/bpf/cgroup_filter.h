// The kernel side of --cgroup_path: the cgroup array slot every module program's filter tests.
#pragma once

#include <bpf/libbpf.h>

#include <string>

#include "core/result.h"

namespace ecapture::bpf {

// Puts cgroup v2 directory `dir` into slot 0 of the loaded `map` (common.bpf.h's ecap_cgroup),
// so that programs with targ_cgroup set see only tasks in its subtree.
Result<void> fill_cgroup_filter(bpf_map* map, const std::string& dir);

}  // namespace ecapture::bpf
