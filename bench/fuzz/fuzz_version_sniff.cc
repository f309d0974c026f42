// libFuzzer target: OpenSSL/BoringSSL version sniffing. The chunked file scan must give exactly
// what the in-memory scan gives, for a chunk size picked by the first byte; the library-version
// detection (which follows DT_NEEDED to libcrypto) must only ever answer or refuse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "elf/version_sniff.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ecapture::fuzz::MemFile file;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] * 3;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto in_memory = ecapture::elf::sniff_ssl_version_in_bytes(bytes);
  const std::string& path = file.hold(data + 1, size - 1);
  auto chunked = ecapture::elf::sniff_ssl_version_in(path, chunk);
  if (!chunked) std::abort();  // a readable file must be scanned
  if (in_memory.has_value() != chunked->has_value()) std::abort();
  if (in_memory && (in_memory->raw != (*chunked)->raw ||
                    in_memory->version != (*chunked)->version ||
                    in_memory->flavor != (*chunked)->flavor)) {
    std::abort();
  }
  (void)ecapture::elf::detect_ssl_version(path);
  return 0;
}
