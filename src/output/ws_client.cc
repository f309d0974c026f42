// ws:// client writer.
#include "output/writers.h"

namespace ecapture {

Result<std::unique_ptr<Writer>> make_ws_client_writer(const std::string& url, size_t) {
  return make_error("--eventaddr {}: the WebSocket client writer is not available yet (use a "
                    "file or tcp://host:port)", url);
}

}  // namespace ecapture
