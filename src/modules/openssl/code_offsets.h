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

// One offset read from code, with the instruction it came from (for messages a user can report).
struct CodeRead {
  uint32_t offset = 0;
  uint64_t address = 0;
  std::string instruction;  // as capstone prints it, e.g. "mov rax, qword ptr [rdi + 0x888]"
};

struct ClientRandomReads {
  std::optional<CodeRead> s3;  // the load of the s3 pointer; nullopt when s3 is inline
  CodeRead client_random;
  ClientRandomOffsets offsets() const {
    return {s3 ? s3->offset : 0u, client_random.offset};
  }
};

// The decoders follow the path a TLS connection takes through the function: the argument is not
// NULL, and OpenSSL 3.2+'s inlined SSL -> SSL_CONNECTION conversion sees the type field (the
// 4-byte int at offset 0) equal to SSL_TYPE_SSL_CONNECTION (0), so its QUIC branch (which loads
// the QUIC object's `tls` pointer at 0x40) is never taken. Branches on anything else are explored
// both ways, the fall-through first.
//
// SSL_get_client_random: x86-64 `mov r, [arg+A]` then `add r, B` / `lea r, [r+B]` (s3 pointer),
// or `lea r, [arg+A]` / `mov r, [arg+A]` of another size (inline); arm64 `ldr xN, [x0, #A]` then
// `add xM, xN, #B`, or `add xM, x0, #A`. nullopt when the code has another shape.
std::optional<ClientRandomReads> client_random_reads_from_code(std::span<const uint8_t> code,
                                                               uint64_t address,
                                                               uint16_t machine);
// SSL_get_session: the first 8-byte load from the argument.
std::optional<CodeRead> session_read_from_code(std::span<const uint8_t> code, uint64_t address,
                                               uint16_t machine);
// SSL_SESSION_get_master_key: the first address computed from the argument (`lea`/`add`).
std::optional<CodeRead> master_key_read_from_code(std::span<const uint8_t> code,
                                                  uint64_t address, uint16_t machine);

// The offsets alone, for callers that need no instruction.
std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine);
std::optional<uint32_t> session_offset_from_code(std::span<const uint8_t> code, uint64_t address,
                                                 uint16_t machine);
std::optional<uint32_t> master_key_offset_from_code(std::span<const uint8_t> code,
                                                    uint64_t address, uint16_t machine);

std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl);

// The accessors' machine code: what the layout check reads (from a library, or from a recorded
// fixture in tests).
struct AccessorCode {
  uint64_t address = 0;
  std::vector<uint8_t> code;
};
struct Accessors {
  uint16_t machine = 0;
  std::optional<AccessorCode> get_client_random;  // SSL_get_client_random
  std::optional<AccessorCode> get_session;        // SSL_get_session
  std::optional<AccessorCode> get_master_key;     // SSL_SESSION_get_master_key
};
// The first bytes (up to 256) of each accessor `ssl` defines.
Accessors read_accessors(const elf::ElfFile& ssl);

// Compares `layout` with what the accessors read. `checked` lists the fields confirmed;
// `mismatches` describes each disagreement with the instruction read, e.g. "session at 0x880 in
// SSL_get_session (`mov rax, qword ptr [rdi + 0x880]` at 0x3873b), the table says 0x888".
struct LayoutCheck {
  std::vector<std::string> checked;
  std::vector<std::string> mismatches;
};
LayoutCheck check_openssl_layout(const Accessors& code, const openssl_layout& layout);
LayoutCheck check_openssl_layout(const elf::ElfFile& ssl, const openssl_layout& layout);

// The file that defines HKDF_expand and CRYPTO_tls1_prf for `ssl`: `ssl` itself (static builds),
// else its DT_NEEDED libcrypto, looked up next to it and then on the loader's path.
Result<std::string> find_boringssl_crypto(const elf::ElfFile& ssl);

}  // namespace ecapture::openssl
