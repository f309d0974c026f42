// NSPR/NSS version sniffing.
#include "modules/tlslib/nss_version.h"

#include <algorithm>

#include "elf/elf_file.h"

namespace ecapture::tlslib {
namespace {

std::optional<std::string> sniff_file(const std::string& path,
                                      std::optional<std::string> (*sniff)(std::string_view)) {
  auto elf = elf::ElfFile::open(path);
  if (!elf) return std::nullopt;
  auto rodata = (*elf)->section_data(".rodata");
  return sniff(std::string_view(reinterpret_cast<const char*>(rodata.data()), rodata.size()));
}

// The length of the "N.N[.N...]" at the start of `s`, or 0.
size_t dotted_numbers_length(std::string_view s) {
  size_t i = 0, groups = 0;
  while (true) {
    const size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return 0;
    ++groups;
    if (i + 1 < s.size() && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
      ++i;
      continue;
    }
    return groups >= 2 ? i : 0;
  }
}

}  // namespace

std::optional<std::string> sniff_nspr_version_in_bytes(std::string_view rodata) {
  std::optional<std::string> found;
  for (size_t pos = 0; pos < rodata.size();) {
    const size_t end = std::min(rodata.find('\0', pos), rodata.size());
    std::string_view s = rodata.substr(pos, end - pos);
    if (s.ends_with(" Beta")) s.remove_suffix(5);
    if (!s.empty() && dotted_numbers_length(s) == s.size()) {
      if (found && *found != s) return std::nullopt;  // ambiguous
      found = std::string(s);
    }
    pos = end + 1;
  }
  return found;
}

std::optional<std::string> sniff_nss_version_in_bytes(std::string_view rodata) {
  for (size_t pos = rodata.find("NSS "); pos != std::string_view::npos;
       pos = rodata.find("NSS ", pos + 1)) {
    std::string_view rest = rodata.substr(pos + 4);
    const size_t n = dotted_numbers_length(rest);
    if (n > 0) return std::string(rest.substr(0, n));
  }
  return std::nullopt;
}

std::optional<std::string> sniff_nspr_version(const std::string& path) {
  return sniff_file(path, sniff_nspr_version_in_bytes);
}

std::optional<std::string> sniff_nss_version(const std::string& path) {
  return sniff_file(path, sniff_nss_version_in_bytes);
}

}  // namespace ecapture::tlslib
