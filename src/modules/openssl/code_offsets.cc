// Reading struct offsets out of accessor functions (capstone), and finding BoringSSL's libcrypto.
#include "modules/openssl/code_offsets.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "elf/lib_discovery.h"

namespace ecapture::openssl {
namespace {

constexpr size_t kMaxInstructions = 32;

// An instruction reduced to what offset reading needs. Registers are capstone ids, with x86
// 32-bit names folded into their 64-bit registers.
struct Op {
  enum Kind { kCopy, kLoad, kAddr, kOther } kind = kOther;
  unsigned dst = 0;
  unsigned base = 0;     // kCopy: the source; kLoad/kAddr: the base register
  int64_t disp = 0;
  unsigned size = 0;     // kLoad: bytes loaded
  std::vector<unsigned> writes;  // every register the instruction writes
};

unsigned fold_x86(unsigned r) {
  static const std::pair<x86_reg, x86_reg> kPairs[] = {
      {X86_REG_EAX, X86_REG_RAX}, {X86_REG_EBX, X86_REG_RBX}, {X86_REG_ECX, X86_REG_RCX},
      {X86_REG_EDX, X86_REG_RDX}, {X86_REG_ESI, X86_REG_RSI}, {X86_REG_EDI, X86_REG_RDI},
      {X86_REG_EBP, X86_REG_RBP}, {X86_REG_R8D, X86_REG_R8},  {X86_REG_R9D, X86_REG_R9},
      {X86_REG_R10D, X86_REG_R10}, {X86_REG_R11D, X86_REG_R11}, {X86_REG_R12D, X86_REG_R12},
      {X86_REG_R13D, X86_REG_R13}, {X86_REG_R14D, X86_REG_R14}, {X86_REG_R15D, X86_REG_R15}};
  for (auto [small, big] : kPairs) {
    if (r == static_cast<unsigned>(small)) return big;
  }
  return r;
}

unsigned fold_arm64(unsigned r) {
  if (r >= ARM64_REG_W0 && r <= ARM64_REG_W30) return ARM64_REG_X0 + (r - ARM64_REG_W0);
  return r;
}

Op reduce_x86(csh cs, const cs_insn& insn) {
  Op op;
  const cs_x86& x = insn.detail->x86;
  if (x.op_count == 2) {
    const cs_x86_op& d = x.operands[0];
    const cs_x86_op& s = x.operands[1];
    const bool plain_mem = s.type == X86_OP_MEM && s.mem.index == X86_REG_INVALID &&
                           s.mem.segment == X86_REG_INVALID;
    if (d.type == X86_OP_REG) {
      if ((insn.id == X86_INS_MOV || insn.id == X86_INS_MOVZX || insn.id == X86_INS_MOVSX ||
           insn.id == X86_INS_MOVSXD) && plain_mem) {
        op = {Op::kLoad, fold_x86(d.reg), fold_x86(s.mem.base), s.mem.disp, s.size, {}};
      } else if (insn.id == X86_INS_MOV && s.type == X86_OP_REG && d.size == 8 && s.size == 8) {
        op = {Op::kCopy, fold_x86(d.reg), fold_x86(s.reg), 0, 0, {}};
      } else if (insn.id == X86_INS_LEA && plain_mem) {
        op = {Op::kAddr, fold_x86(d.reg), fold_x86(s.mem.base), s.mem.disp, 0, {}};
      } else if (insn.id == X86_INS_ADD && s.type == X86_OP_IMM) {
        op = {Op::kAddr, fold_x86(d.reg), fold_x86(d.reg), s.imm, 0, {}};
      }
    }
  }
  cs_regs read{}, written{};
  uint8_t nread = 0, nwritten = 0;
  if (cs_regs_access(cs, &insn, read, &nread, written, &nwritten) == CS_ERR_OK) {
    for (uint8_t i = 0; i < nwritten; ++i) op.writes.push_back(fold_x86(written[i]));
  }
  return op;
}

Op reduce_arm64(csh cs, const cs_insn& insn) {
  Op op;
  const cs_arm64& a = insn.detail->arm64;
  if (a.op_count >= 2 && a.operands[0].type == ARM64_OP_REG) {
    const unsigned dst = fold_arm64(a.operands[0].reg);
    const cs_arm64_op& s = a.operands[1];
    const bool load = insn.id == ARM64_INS_LDR || insn.id == ARM64_INS_LDRB ||
                      insn.id == ARM64_INS_LDRH || insn.id == ARM64_INS_LDRSW;
    if (load && a.op_count == 2 && s.type == ARM64_OP_MEM && s.mem.index == ARM64_REG_INVALID) {
      unsigned size = insn.id == ARM64_INS_LDRB ? 1 : insn.id == ARM64_INS_LDRH ? 2
                      : insn.id == ARM64_INS_LDRSW ? 4
                      : (a.operands[0].reg >= ARM64_REG_W0 && a.operands[0].reg <= ARM64_REG_W30)
                          ? 4 : 8;
      op = {Op::kLoad, dst, fold_arm64(s.mem.base), s.mem.disp, size, {}};
    } else if (insn.id == ARM64_INS_MOV && a.op_count == 2 && s.type == ARM64_OP_REG) {
      op = {Op::kCopy, dst, fold_arm64(s.reg), 0, 0, {}};
    } else if (insn.id == ARM64_INS_ADD && a.op_count == 3 && s.type == ARM64_OP_REG &&
               a.operands[2].type == ARM64_OP_IMM) {
      op = {Op::kAddr, dst, fold_arm64(s.reg), a.operands[2].imm, 0, {}};
    }
  }
  cs_regs read{}, written{};
  uint8_t nread = 0, nwritten = 0;
  if (cs_regs_access(cs, &insn, read, &nread, written, &nwritten) == CS_ERR_OK) {
    for (uint8_t i = 0; i < nwritten; ++i) op.writes.push_back(fold_arm64(written[i]));
  }
  if (op.kind != Op::kOther && std::find(op.writes.begin(), op.writes.end(), op.dst) ==
                                   op.writes.end()) {
    op.writes.push_back(op.dst);
  }
  return op;
}

struct Decoded {
  std::vector<Op> ops;
  unsigned arg0 = 0;
};

std::optional<Decoded> decode(std::span<const uint8_t> code, uint64_t address, uint16_t machine) {
  if (machine != EM_X86_64 && machine != EM_AARCH64) return std::nullopt;
  const bool arm = machine == EM_AARCH64;
  csh cs = 0;
  if (cs_open(arm ? CS_ARCH_ARM64 : CS_ARCH_X86, arm ? CS_MODE_ARM : CS_MODE_64, &cs) !=
      CS_ERR_OK) {
    return std::nullopt;
  }
  cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* insns = nullptr;
  size_t count = cs_disasm(cs, code.data(), code.size(), address, kMaxInstructions, &insns);
  Decoded d;
  d.arg0 = arm ? static_cast<unsigned>(ARM64_REG_X0) : static_cast<unsigned>(X86_REG_RDI);
  for (size_t i = 0; i < count; ++i) {
    d.ops.push_back(arm ? reduce_arm64(cs, insns[i]) : reduce_x86(cs, insns[i]));
  }
  if (count > 0) cs_free(insns, count);
  cs_close(&cs);
  if (d.ops.empty()) return std::nullopt;
  return d;
}

// Walks `d`, keeping the set of registers that hold the first argument, and calls
// visit(op, from_arg) for each load/address op; stops when visit returns a value.
template <typename T, typename Visit>
std::optional<T> walk(const Decoded& d, Visit visit) {
  std::set<unsigned> args{d.arg0};
  for (const Op& op : d.ops) {
    const bool from_arg = args.count(op.base) > 0;
    if (op.kind == Op::kLoad || op.kind == Op::kAddr) {
      if (auto r = visit(op, from_arg)) return r;
    }
    for (unsigned w : op.writes) args.erase(w);
    if (op.kind == Op::kCopy && from_arg) args.insert(op.dst);
  }
  return std::nullopt;
}

std::optional<std::vector<uint8_t>> function_code(const elf::ElfFile& f, const char* name,
                                                  uint64_t* address) {
  auto fn = f.find_function(name);
  if (!fn || fn->size == 0) return std::nullopt;
  std::vector<uint8_t> code(std::min<uint64_t>(fn->size, 256));
  int fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  ssize_t n = ::pread(fd, code.data(), code.size(), static_cast<off_t>(fn->file_offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(code.size())) return std::nullopt;
  *address = fn->value;
  return code;
}

}  // namespace

std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine) {
  auto d = decode(code, address, machine);
  if (!d) return std::nullopt;
  // Either the first access from the argument is the client random itself (inline s3), or it
  // loads the s3 pointer and an offset is then added to that pointer.
  std::optional<unsigned> s3_reg;
  ClientRandomOffsets found;
  std::set<unsigned> args{d->arg0};
  for (const Op& op : d->ops) {
    const bool from_arg = args.count(op.base) > 0;
    if (!s3_reg) {
      if (from_arg && op.disp > 0 && op.kind == Op::kLoad && op.size == 8) {
        s3_reg = op.dst;
        found.ssl_s3 = static_cast<uint32_t>(op.disp);
        continue;
      }
      if (from_arg && op.disp > 0 && (op.kind == Op::kAddr || op.kind == Op::kLoad)) {
        return ClientRandomOffsets{0, static_cast<uint32_t>(op.disp)};
      }
    } else {
      if (op.kind == Op::kAddr && op.base == *s3_reg && op.disp > 0) {
        found.s3_client_random = static_cast<uint32_t>(op.disp);
        return found;
      }
      if (std::find(op.writes.begin(), op.writes.end(), *s3_reg) != op.writes.end()) {
        return std::nullopt;  // the pointer was overwritten before any offset was added
      }
    }
    for (unsigned w : op.writes) args.erase(w);
    if (op.kind == Op::kCopy && from_arg) args.insert(op.dst);
  }
  return std::nullopt;
}

std::optional<uint32_t> session_offset_from_code(std::span<const uint8_t> code, uint64_t address,
                                                 uint16_t machine) {
  auto d = decode(code, address, machine);
  if (!d) return std::nullopt;
  return walk<uint32_t>(*d, [](const Op& op, bool from_arg) -> std::optional<uint32_t> {
    if (from_arg && op.kind == Op::kLoad && op.size == 8 && op.disp > 0) {
      return static_cast<uint32_t>(op.disp);
    }
    return std::nullopt;
  });
}

std::optional<uint32_t> master_key_offset_from_code(std::span<const uint8_t> code,
                                                    uint64_t address, uint16_t machine) {
  auto d = decode(code, address, machine);
  if (!d) return std::nullopt;
  return walk<uint32_t>(*d, [](const Op& op, bool from_arg) -> std::optional<uint32_t> {
    if (from_arg && op.kind == Op::kAddr && op.disp > 0) return static_cast<uint32_t>(op.disp);
    return std::nullopt;
  });
}

std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl) {
  uint64_t address = 0;
  auto code = function_code(ssl, "SSL_get_client_random", &address);
  if (!code) return std::nullopt;
  return client_random_offsets_from_code(*code, address, ssl.machine());
}

LayoutCheck check_openssl_layout(const elf::ElfFile& ssl, const openssl_layout& layout) {
  LayoutCheck out;
  auto compare = [&](const char* field, const char* fn, uint64_t table, uint64_t code) {
    if (table == code) {
      out.checked.push_back(field);
    } else {
      out.mismatches.push_back(
          fmt::format("{} at {:#x} in {}, the table says {:#x}", field, code, fn, table));
    }
  };
  if (auto cr = client_random_offsets(ssl)) {
    compare("s3", "SSL_get_client_random", layout.ssl_s3, cr->ssl_s3);
    compare("client_random", "SSL_get_client_random", layout.s3_client_random,
            cr->s3_client_random);
  }
  if (layout.boringssl) return out;  // the session fields are not used for BoringSSL
  uint64_t address = 0;
  if (auto code = function_code(ssl, "SSL_get_session", &address)) {
    if (auto off = session_offset_from_code(*code, address, ssl.machine())) {
      compare("session", "SSL_get_session", layout.ssl_session, *off);
    }
  }
  if (auto code = function_code(ssl, "SSL_SESSION_get_master_key", &address)) {
    if (auto off = master_key_offset_from_code(*code, address, ssl.machine())) {
      compare("master_key", "SSL_SESSION_get_master_key", layout.session_master_key, *off);
    }
  }
  return out;
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
