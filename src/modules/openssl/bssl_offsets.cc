// Reading BoringSSL's client-random offsets out of its code, and finding its libcrypto.
#include "modules/openssl/bssl_offsets.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "elf/lib_discovery.h"

namespace ecapture::openssl {
namespace {

constexpr int kMaxInstructions = 24;

std::optional<ClientRandomOffsets> decode_x86(const cs_insn* insns, size_t count) {
  std::optional<ClientRandomOffsets> found;
  x86_reg s3_reg = X86_REG_INVALID;
  for (size_t i = 0; i < count; ++i) {
    const cs_x86& x = insns[i].detail->x86;
    if (x.op_count != 2) continue;
    const cs_x86_op& dst = x.operands[0];
    const cs_x86_op& src = x.operands[1];
    if (s3_reg == X86_REG_INVALID) {
      // mov r64, qword ptr [rdi + A]: the s3 pointer of the SSL* in the first argument.
      if (insns[i].id == X86_INS_MOV && dst.type == X86_OP_REG && src.type == X86_OP_MEM &&
          src.mem.base == X86_REG_RDI && src.mem.index == X86_REG_INVALID && src.size == 8 &&
          src.mem.disp > 0) {
        s3_reg = dst.reg;
        found = ClientRandomOffsets{static_cast<uint32_t>(src.mem.disp), 0};
      }
      continue;
    }
    if (insns[i].id == X86_INS_ADD && dst.type == X86_OP_REG && dst.reg == s3_reg &&
        src.type == X86_OP_IMM && src.imm > 0) {
      found->s3_client_random = static_cast<uint32_t>(src.imm);
      return found;
    }
    if (insns[i].id == X86_INS_LEA && src.type == X86_OP_MEM && src.mem.base == s3_reg &&
        src.mem.index == X86_REG_INVALID && src.mem.disp > 0) {
      found->s3_client_random = static_cast<uint32_t>(src.mem.disp);
      return found;
    }
    // The register was overwritten before any offset was added: not the expected shape.
    if (dst.type == X86_OP_REG && dst.reg == s3_reg) return std::nullopt;
  }
  return std::nullopt;
}

std::optional<ClientRandomOffsets> decode_arm64(const cs_insn* insns, size_t count) {
  std::optional<ClientRandomOffsets> found;
  arm64_reg s3_reg = ARM64_REG_INVALID;
  for (size_t i = 0; i < count; ++i) {
    const cs_arm64& a = insns[i].detail->arm64;
    if (s3_reg == ARM64_REG_INVALID) {
      // ldr xN, [x0, #A]
      if (insns[i].id == ARM64_INS_LDR && a.op_count == 2 && a.operands[0].type == ARM64_OP_REG &&
          a.operands[1].type == ARM64_OP_MEM && a.operands[1].mem.base == ARM64_REG_X0 &&
          a.operands[1].mem.index == ARM64_REG_INVALID && a.operands[1].mem.disp > 0) {
        s3_reg = a.operands[0].reg;
        found = ClientRandomOffsets{static_cast<uint32_t>(a.operands[1].mem.disp), 0};
      }
      continue;
    }
    // add xM, xN, #B
    if (insns[i].id == ARM64_INS_ADD && a.op_count == 3 && a.operands[1].type == ARM64_OP_REG &&
        a.operands[1].reg == s3_reg && a.operands[2].type == ARM64_OP_IMM && a.operands[2].imm > 0) {
      found->s3_client_random = static_cast<uint32_t>(a.operands[2].imm);
      return found;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine) {
  if (machine != EM_X86_64 && machine != EM_AARCH64) return std::nullopt;
  csh cs = 0;
  if (cs_open(machine == EM_AARCH64 ? CS_ARCH_ARM64 : CS_ARCH_X86,
              machine == EM_AARCH64 ? CS_MODE_ARM : CS_MODE_64, &cs) != CS_ERR_OK) {
    return std::nullopt;
  }
  cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insns = nullptr;
  size_t count = cs_disasm(cs, code.data(), code.size(), address, kMaxInstructions, &insns);
  std::optional<ClientRandomOffsets> found;
  if (count > 0) {
    found = machine == EM_AARCH64 ? decode_arm64(insns, count) : decode_x86(insns, count);
    cs_free(insns, count);
  }
  cs_close(&cs);
  return found;
}

std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl) {
  auto fn = ssl.find_function("SSL_get_client_random");
  if (!fn || fn->size == 0) return std::nullopt;
  std::vector<uint8_t> code(std::min<uint64_t>(fn->size, 256));
  int fd = ::open(ssl.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  ssize_t n = ::pread(fd, code.data(), code.size(), static_cast<off_t>(fn->file_offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(code.size())) return std::nullopt;
  return client_random_offsets_from_code(code, fn->value, ssl.machine());
}

Result<std::string> find_boringssl_crypto(const elf::ElfFile& ssl) {
  // find_function only returns definitions, never imports.
  auto has_kdfs = [](const elf::ElfFile& f) {
    return f.find_function("HKDF_expand").has_value() &&
           f.find_function("CRYPTO_tls1_prf").has_value();
  };
  if (has_kdfs(ssl)) return ssl.path();
  const std::string dir = ssl.path().substr(0, ssl.path().rfind('/') + 1);
  for (const auto& needed : ssl.needed()) {
    if (needed.rfind("libcrypto", 0) != 0) continue;
    std::vector<std::string> candidates;
    if (!dir.empty()) candidates.push_back(dir + needed);
    if (auto found = elf::find_library({needed}); found) candidates.push_back(*found);
    for (const auto& path : candidates) {
      auto f = elf::ElfFile::open(path);
      if (f && has_kdfs(**f)) return path;
    }
  }
  return make_error("{}: BoringSSL key capture hooks HKDF_expand and CRYPTO_tls1_prf, and neither "
                    "the library nor a libcrypto it needs (looked next to it and on the loader's "
                    "path) defines them", ssl.path());
}

}  // namespace ecapture::openssl
