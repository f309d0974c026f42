// Struct offsets read back from the library's own code: tiny exported accessors
// (SSL_get_session, SSL_get_client_random, SSL_SESSION_get_master_key) compile to a load or an
// address computation from their first argument, whose displacement is the field's offset. Used
// to check a layout table row against the library actually loaded, and for BoringSSL to find the
// libcrypto whose key-derivation functions carry the secrets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "elf/elf_file.h"
#include "modules/openssl/openssl_abi.h"

namespace ecapture::openssl {

struct ClientRandomOffsets {
  uint32_t ssl_s3 = 0;            // ssl->s3 pointer; 0 when the s3 state is inline
  uint32_t s3_client_random = 0;  // client_random, from the s3 pointer or from the SSL*
  bool operator==(const ClientRandomOffsets&) const = default;
};

// SSL_get_client_random: x86-64 `mov r, [arg+A]` then `add r, B` / `lea r, [r+B]` (s3 pointer),
// or `lea r, [arg+A]` / `mov r, [arg+A]` of another size (inline); arm64 `ldr xN, [x0, #A]` then
// `add xM, xN, #B`, or `add xM, x0, #A`. nullopt when the code has another shape.
std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine);
// SSL_get_session: the first 8-byte load from the argument.
std::optional<uint32_t> session_offset_from_code(std::span<const uint8_t> code, uint64_t address,
                                                 uint16_t machine);
// SSL_SESSION_get_master_key: the first address computed from the argument (`lea`/`add`).
std::optional<uint32_t> master_key_offset_from_code(std::span<const uint8_t> code,
                                                    uint64_t address, uint16_t machine);

std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl);

// Compares `layout` with what the accessors of `ssl` read. `checked` lists the fields confirmed;
// `mismatches` describes each disagreement ("session at 0x938 in SSL_get_session, table 0x918").
struct LayoutCheck {
  std::vector<std::string> checked;
  std::vector<std::string> mismatches;
};
LayoutCheck check_openssl_layout(const elf::ElfFile& ssl, const openssl_layout& layout);

// The file that defines HKDF_expand and CRYPTO_tls1_prf for `ssl`: `ssl` itself (static builds),
// else its DT_NEEDED libcrypto, looked up next to it and then on the loader's path.
Result<std::string> find_boringssl_crypto(const elf::ElfFile& ssl);

}  // namespace ecapture::openssl
