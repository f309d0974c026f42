// BoringSSL: the two struct offsets key capture needs (ssl_st.s3 and SSL3_STATE.client_random),
// read back from the library's own SSL_get_client_random, and the libcrypto whose key-derivation
// functions carry the secrets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "core/result.h"
#include "elf/elf_file.h"

namespace ecapture::openssl {

struct ClientRandomOffsets {
  uint32_t ssl_s3 = 0;            // ssl->s3
  uint32_t s3_client_random = 0;  // s3->client_random
  bool operator==(const ClientRandomOffsets&) const = default;
};

// Decodes SSL_get_client_random's machine code (x86-64: `mov r, [rdi+A]` … `add r, B` or
// `lea r, [r+B]`; arm64: `ldr xN, [x0, #A]` … `add xM, xN, #B`). nullopt when the code does not
// have that shape.
std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine);

// The same, for the function in `ssl`.
std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl);

// The file that defines HKDF_expand and CRYPTO_tls1_prf for `ssl`: `ssl` itself (static builds),
// else its DT_NEEDED libcrypto, looked up next to it and then on the loader's path.
Result<std::string> find_boringssl_crypto(const elf::ElfFile& ssl);

}  // namespace ecapture::openssl
