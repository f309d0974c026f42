// Where the dynamic loader would find a library: /etc/ld.so.conf (with includes), the ld cache
// (/etc/ld.so.cache), the default directories, and the libraries mapped by running processes.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace ecapture::elf {

// Directories from /etc/ld.so.conf (recursively following `include` globs, relative paths
// resolved against the including file), in order, followed by the default system directories.
// `conf_path` is a parameter for tests.
std::vector<std::string> loader_search_dirs(const std::string& conf_path = "/etc/ld.so.conf");

// Entries of the ld cache for this architecture whose soname equals `soname`
// (e.g. "libssl.so.3"), as absolute paths. `cache_path` is a parameter for tests.
std::vector<std::string> ld_cache_lookup(const std::string& soname,
                                         const std::string& cache_path = "/etc/ld.so.cache");

// Finds the first existing file named one of `sonames` (in order of preference): ld cache first,
// then the search dirs. Error lists what was looked for and where.
Result<std::string> find_library(const std::vector<std::string>& sonames);

// Paths of mapped files in /proc/*/maps whose basename starts with `prefix` (e.g. "libssl.so"),
// deduplicated, as seen from our mount namespace (/proc/<pid>/root/<path> when the process lives
// in another mount namespace, e.g. a container). `pid` > 0 looks at that process only.
std::vector<std::string> mapped_libraries(const std::string& prefix, int pid = 0);

// The executable of process `pid`, as seen from our mount namespace; "" when it is gone.
std::string process_executable(int pid);

}  // namespace ecapture::elf
