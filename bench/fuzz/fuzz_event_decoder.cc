// libFuzzer target: the TLS data-record decoder and chunk reassembly.
// The input is a sequence of records, each prefixed by a 2-byte little-endian length.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tls/chunk_assembler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t events = 0;
  ecapture::tls::ChunkAssembler a(0, [&](ecapture::DataEvent&&) { ++events; });
  while (size >= 2) {
    size_t n = data[0] | (size_t{data[1]} << 8);
    data += 2;
    size -= 2;
    n = n > size ? size : n;
    (void)a.add(std::span<const uint8_t>(data, n));
    data += n;
    size -= n;
    a.tick(1'000'000'000);
  }
  a.flush();
  return 0;
}
