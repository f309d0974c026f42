// Process-wide host identity for events.
#include "core/host_id.h"

#include <unistd.h>

#include <climits>
#include <mutex>

namespace ecapture {
namespace {

std::string& storage() {
  static std::string id;
  return id;
}

std::string hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

}  // namespace

Result<void> validate_host_id(std::string_view id) {
  if (id.empty() || id.size() > 253) {
    return make_error("--host-id '{}': must be 1 to 253 characters", id);
  }
  for (char c : id) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '/') {
      return make_error("--host-id '{}': no whitespace, control characters or '/' allowed", id);
    }
  }
  return {};
}

void set_host_id(std::string id) { storage() = id.empty() ? hostname() : std::move(id); }

const std::string& host_id() {
  // Set once at start-up (set_host_id) before threads encode events; the hostname otherwise.
  static std::once_flag once;
  std::call_once(once, [] {
    if (storage().empty()) storage() = hostname();
  });
  return storage();
}

}  // namespace ecapture
