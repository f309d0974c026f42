// Reading struct offsets out of accessor functions (capstone), and finding BoringSSL's libcrypto.
#include "modules/openssl/code_offsets.h"

#include <capstone/capstone.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "elf/lib_discovery.h"

namespace ecapture::openssl {
namespace {

constexpr size_t kMaxCodeBytes = 256;
// Bounds on the path search: the accessors are a few dozen instructions with a handful of
// branches, so anything beyond this is not one of them.
constexpr size_t kMaxPathLength = 64;
constexpr size_t kMaxPaths = 16;

// The condition of a conditional branch, common to x86 and arm64.
enum class Cond { kEq, kNe, kUgt, kUge, kUlt, kUle, kSgt, kSge, kSlt, kSle, kNeg, kNonNeg };

// How an instruction continues: to the next one, to a target, conditionally, or not at all.
struct Flow {
  enum class Kind {
    kNext,        // falls through (calls included: they return)
    kJump,        // always to target
    kCond,        // flags condition `cond`
    kZero,        // cbz reg (taken when reg == 0)
    kNonZero,     // cbnz reg
    kBitZero,     // tbz reg, #bit
    kBitNonZero,  // tbnz reg, #bit
    kEnd,         // ret, indirect jump, jump out of the function (tail call)
  } kind = Kind::kNext;
  Cond cond = Cond::kEq;
  uint64_t target = 0;
  unsigned reg = 0;
  unsigned bit = 0;
};

// An instruction reduced to what offset reading needs. Registers are capstone ids, with 32-bit
// names folded into their 64-bit registers.
struct Op {
  enum Kind { kCopy, kLoad, kAddr, kOther } kind = kOther;
  unsigned dst = 0;
  unsigned base = 0;     // kCopy: the source; kLoad/kAddr: the base register
  int64_t disp = 0;
  unsigned size = 0;     // kLoad: bytes loaded
  std::vector<unsigned> writes;  // every register the instruction writes
  // For the branch decisions (Tracker).
  enum class Value { kNone, kImm, kZeroIdiom, kAddImm, kCompare, kTest } value = Value::kNone;
  int64_t imm = 0;            // kImm: dst = imm; kAddImm: dst = lhs + imm; kCompare/kTest: operand
  unsigned lhs = 0, rhs = 0;  // kAddImm source; kCompare/kTest registers (rhs 0: immediate)
  bool lhs_type_field = false;   // kCompare/kTest: left side is the 4-byte int at [arg + 0]
  unsigned width = 8;         // operand bytes of a comparison or an arithmetic result
  bool sets_flags = false;
  bool call = false;  // registers hold nothing known after it
  Flow flow;
  uint64_t address = 0;
  std::string text;  // "mov rax, qword ptr [rdi + 0x888]"
};

unsigned fold_x86(unsigned r) {
  static const std::pair<x86_reg, x86_reg> kPairs[] = {
      {X86_REG_EAX, X86_REG_RAX}, {X86_REG_EBX, X86_REG_RBX}, {X86_REG_ECX, X86_REG_RCX},
      {X86_REG_EDX, X86_REG_RDX}, {X86_REG_ESI, X86_REG_RSI}, {X86_REG_EDI, X86_REG_RDI},
      {X86_REG_EBP, X86_REG_RBP}, {X86_REG_R8D, X86_REG_R8},  {X86_REG_R9D, X86_REG_R9},
      {X86_REG_R10D, X86_REG_R10}, {X86_REG_R11D, X86_REG_R11}, {X86_REG_R12D, X86_REG_R12},
      {X86_REG_R13D, X86_REG_R13}, {X86_REG_R14D, X86_REG_R14}, {X86_REG_R15D, X86_REG_R15},
      {X86_REG_AL, X86_REG_RAX},  {X86_REG_BL, X86_REG_RBX},   {X86_REG_CL, X86_REG_RCX},
      {X86_REG_DL, X86_REG_RDX},  {X86_REG_SIL, X86_REG_RSI},  {X86_REG_DIL, X86_REG_RDI}};
  for (auto [small, big] : kPairs) {
    if (r == static_cast<unsigned>(small)) return big;
  }
  return r;
}

unsigned fold_arm64(unsigned r) {
  if (r >= ARM64_REG_W0 && r <= ARM64_REG_W30) return ARM64_REG_X0 + (r - ARM64_REG_W0);
  if (r == ARM64_REG_WZR) return ARM64_REG_XZR;
  return r;
}

bool is_arm64_w(unsigned r) {
  return (r >= ARM64_REG_W0 && r <= ARM64_REG_W30) || r == ARM64_REG_WZR;
}

std::optional<Cond> x86_cond(unsigned id) {
  switch (id) {
    case X86_INS_JE: return Cond::kEq;
    case X86_INS_JNE: return Cond::kNe;
    case X86_INS_JA: return Cond::kUgt;
    case X86_INS_JAE: return Cond::kUge;
    case X86_INS_JB: return Cond::kUlt;
    case X86_INS_JBE: return Cond::kUle;
    case X86_INS_JG: return Cond::kSgt;
    case X86_INS_JGE: return Cond::kSge;
    case X86_INS_JL: return Cond::kSlt;
    case X86_INS_JLE: return Cond::kSle;
    case X86_INS_JS: return Cond::kNeg;
    case X86_INS_JNS: return Cond::kNonNeg;
    default: return std::nullopt;
  }
}

std::optional<Cond> arm64_cond(arm64_cc cc) {
  switch (cc) {
    case ARM64_CC_EQ: return Cond::kEq;
    case ARM64_CC_NE: return Cond::kNe;
    case ARM64_CC_HI: return Cond::kUgt;
    case ARM64_CC_HS: return Cond::kUge;
    case ARM64_CC_LO: return Cond::kUlt;
    case ARM64_CC_LS: return Cond::kUle;
    case ARM64_CC_GT: return Cond::kSgt;
    case ARM64_CC_GE: return Cond::kSge;
    case ARM64_CC_LT: return Cond::kSlt;
    case ARM64_CC_LE: return Cond::kSle;
    case ARM64_CC_MI: return Cond::kNeg;
    case ARM64_CC_PL: return Cond::kNonNeg;
    default: return std::nullopt;
  }
}

void add_writes(csh cs, const cs_insn& insn, unsigned (*fold)(unsigned), Op* op) {
  cs_regs read{}, written{};
  uint8_t nread = 0, nwritten = 0;
  if (cs_regs_access(cs, &insn, read, &nread, written, &nwritten) == CS_ERR_OK) {
    for (uint8_t i = 0; i < nwritten; ++i) op->writes.push_back(fold(written[i]));
  }
  if (op->kind != Op::kOther && std::find(op->writes.begin(), op->writes.end(), op->dst) ==
                                    op->writes.end()) {
    op->writes.push_back(op->dst);
  }
}

Op reduce_x86(csh cs, const cs_insn& insn) {
  Op op;
  const cs_x86& x = insn.detail->x86;
  auto plain_mem = [](const cs_x86_op& o) {
    return o.type == X86_OP_MEM && o.mem.index == X86_REG_INVALID &&
           o.mem.segment == X86_REG_INVALID;
  };
  if (x.op_count == 2) {
    const cs_x86_op& d = x.operands[0];
    const cs_x86_op& s = x.operands[1];
    if (d.type == X86_OP_REG) {
      if ((insn.id == X86_INS_MOV || insn.id == X86_INS_MOVZX || insn.id == X86_INS_MOVSX ||
           insn.id == X86_INS_MOVSXD) && plain_mem(s)) {
        op.kind = Op::kLoad;
        op.dst = fold_x86(d.reg);
        op.base = fold_x86(s.mem.base);
        op.disp = s.mem.disp;
        op.size = s.size;
      } else if (insn.id == X86_INS_MOV && s.type == X86_OP_REG && d.size == 8 && s.size == 8) {
        op.kind = Op::kCopy;
        op.dst = fold_x86(d.reg);
        op.base = fold_x86(s.reg);
      } else if (insn.id == X86_INS_LEA && plain_mem(s)) {
        op.kind = Op::kAddr;
        op.dst = fold_x86(d.reg);
        op.base = fold_x86(s.mem.base);
        op.disp = s.mem.disp;
        op.width = d.size;
      } else if (insn.id == X86_INS_ADD && s.type == X86_OP_IMM) {
        op.kind = Op::kAddr;
        op.dst = fold_x86(d.reg);
        op.base = op.dst;
        op.disp = s.imm;
        op.width = d.size;
      } else if (insn.id == X86_INS_SUB && s.type == X86_OP_IMM) {
        op.value = Op::Value::kAddImm;
        op.dst = fold_x86(d.reg);
        op.lhs = op.dst;
        op.imm = -s.imm;
        op.width = d.size;
      } else if (insn.id == X86_INS_MOV && s.type == X86_OP_IMM) {
        op.value = Op::Value::kImm;
        op.dst = fold_x86(d.reg);
        op.imm = s.imm;
        op.width = d.size;
      } else if (insn.id == X86_INS_XOR && s.type == X86_OP_REG && s.reg == d.reg) {
        op.value = Op::Value::kZeroIdiom;
        op.dst = fold_x86(d.reg);
      }
    }
    if (insn.id == X86_INS_CMP || insn.id == X86_INS_TEST) {
      op.value = insn.id == X86_INS_CMP ? Op::Value::kCompare : Op::Value::kTest;
      op.width = d.size;
      if (d.type == X86_OP_REG) {
        op.lhs = fold_x86(d.reg);
      } else if (plain_mem(d) && d.mem.disp == 0 && d.size == 4) {
        op.lhs = fold_x86(d.mem.base);
        op.lhs_type_field = true;
      } else {
        op.value = Op::Value::kNone;
      }
      if (s.type == X86_OP_REG) {
        op.rhs = fold_x86(s.reg);
      } else if (s.type == X86_OP_IMM) {
        op.imm = s.imm;
      } else {
        op.value = Op::Value::kNone;
      }
    }
  }
  if (auto c = x86_cond(insn.id); c && x.op_count == 1 && x.operands[0].type == X86_OP_IMM) {
    op.flow = {Flow::Kind::kCond, *c, static_cast<uint64_t>(x.operands[0].imm), 0, 0};
  } else if (insn.id == X86_INS_JMP) {
    if (x.op_count == 1 && x.operands[0].type == X86_OP_IMM) {
      op.flow = {Flow::Kind::kJump, Cond::kEq, static_cast<uint64_t>(x.operands[0].imm), 0, 0};
    } else {
      op.flow.kind = Flow::Kind::kEnd;
    }
  } else if (insn.id == X86_INS_RET || insn.id == X86_INS_UD2 || insn.id == X86_INS_HLT) {
    op.flow.kind = Flow::Kind::kEnd;
  }
  op.call = insn.id == X86_INS_CALL;
  add_writes(cs, insn, fold_x86, &op);
  op.sets_flags = std::find(op.writes.begin(), op.writes.end(),
                            static_cast<unsigned>(X86_REG_EFLAGS)) != op.writes.end();
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
                      : is_arm64_w(a.operands[0].reg) ? 4 : 8;
      op.kind = Op::kLoad;
      op.dst = dst;
      op.base = fold_arm64(s.mem.base);
      op.disp = s.mem.disp;
      op.size = size;
    } else if (insn.id == ARM64_INS_MOV && a.op_count == 2 && s.type == ARM64_OP_REG) {
      op.kind = Op::kCopy;
      op.dst = dst;
      op.base = fold_arm64(s.reg);
    } else if (insn.id == ARM64_INS_ADD && a.op_count == 3 && s.type == ARM64_OP_REG &&
               a.operands[2].type == ARM64_OP_IMM && a.operands[2].shift.value == 0) {
      op.kind = Op::kAddr;
      op.dst = dst;
      op.base = fold_arm64(s.reg);
      op.disp = a.operands[2].imm;
      op.width = is_arm64_w(a.operands[0].reg) ? 4 : 8;
    } else if (insn.id == ARM64_INS_SUB && a.op_count == 3 && s.type == ARM64_OP_REG &&
               a.operands[2].type == ARM64_OP_IMM && a.operands[2].shift.value == 0) {
      op.value = Op::Value::kAddImm;
      op.dst = dst;
      op.lhs = fold_arm64(s.reg);
      op.imm = -a.operands[2].imm;
      op.width = is_arm64_w(a.operands[0].reg) ? 4 : 8;
    } else if ((insn.id == ARM64_INS_MOV || insn.id == ARM64_INS_MOVZ) && a.op_count == 2 &&
               s.type == ARM64_OP_IMM && s.shift.value == 0) {
      op.value = Op::Value::kImm;
      op.dst = dst;
      op.imm = s.imm;
      op.width = is_arm64_w(a.operands[0].reg) ? 4 : 8;
    }
    if ((insn.id == ARM64_INS_CMP || insn.id == ARM64_INS_TST) && a.op_count == 2) {
      op.value = insn.id == ARM64_INS_CMP ? Op::Value::kCompare : Op::Value::kTest;
      op.lhs = dst;
      op.width = is_arm64_w(a.operands[0].reg) ? 4 : 8;
      if (s.type == ARM64_OP_REG && s.shift.value == 0 && s.ext == ARM64_EXT_INVALID) {
        op.rhs = fold_arm64(s.reg);
      } else if (s.type == ARM64_OP_IMM && s.shift.value == 0) {
        op.imm = s.imm;
      } else {
        op.value = Op::Value::kNone;
      }
    }
  }
  auto imm_target = [&](int i) {
    return a.op_count > i && a.operands[i].type == ARM64_OP_IMM
               ? std::optional<uint64_t>(static_cast<uint64_t>(a.operands[i].imm))
               : std::nullopt;
  };
  if (insn.id == ARM64_INS_B && imm_target(0)) {
    if (a.cc == ARM64_CC_INVALID || a.cc == ARM64_CC_AL) {
      op.flow = {Flow::Kind::kJump, Cond::kEq, *imm_target(0), 0, 0};
    } else if (auto c = arm64_cond(a.cc)) {
      op.flow = {Flow::Kind::kCond, *c, *imm_target(0), 0, 0};
    } else {
      op.flow.kind = Flow::Kind::kEnd;  // b.vs / b.vc: never in these accessors
    }
  } else if ((insn.id == ARM64_INS_CBZ || insn.id == ARM64_INS_CBNZ) && imm_target(1)) {
    op.flow = {insn.id == ARM64_INS_CBZ ? Flow::Kind::kZero : Flow::Kind::kNonZero, Cond::kEq,
               *imm_target(1), fold_arm64(a.operands[0].reg), 0};
  } else if ((insn.id == ARM64_INS_TBZ || insn.id == ARM64_INS_TBNZ) && imm_target(2) &&
             imm_target(1)) {
    op.flow = {insn.id == ARM64_INS_TBZ ? Flow::Kind::kBitZero : Flow::Kind::kBitNonZero,
               Cond::kEq, *imm_target(2), fold_arm64(a.operands[0].reg),
               static_cast<unsigned>(*imm_target(1))};
  } else if (insn.id == ARM64_INS_RET || insn.id == ARM64_INS_BR) {
    op.flow.kind = Flow::Kind::kEnd;
  }
  op.call = insn.id == ARM64_INS_BL || insn.id == ARM64_INS_BLR;
  add_writes(cs, insn, fold_arm64, &op);
  // capstone 4 does not always list NZCV among the written registers; the flag-setting forms are
  // the comparisons and the `s`-suffixed arithmetic.
  const std::string_view m = insn.mnemonic;
  op.sets_flags = std::find(op.writes.begin(), op.writes.end(),
                            static_cast<unsigned>(ARM64_REG_NZCV)) != op.writes.end() ||
                  m == "cmp" || m == "cmn" || m == "tst" || m == "ccmp" || m == "ccmn" ||
                  m == "fcmp" || m == "adds" || m == "subs" || m == "ands" || m == "bics" ||
                  m == "adcs" || m == "sbcs" || m == "negs" || m == "ngcs";
  return op;
}

struct Decoded {
  std::vector<Op> ops;  // in address order
  unsigned arg0 = 0;
  unsigned zero_reg = 0;  // arm64 xzr; 0 on x86
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
  const size_t count = cs_disasm(cs, code.data(), std::min(code.size(), kMaxCodeBytes), address,
                                 0, &insns);
  Decoded d;
  d.arg0 = arm ? static_cast<unsigned>(ARM64_REG_X0) : static_cast<unsigned>(X86_REG_RDI);
  d.zero_reg = arm ? static_cast<unsigned>(ARM64_REG_XZR) : 0;
  for (size_t i = 0; i < count; ++i) {
    Op op = arm ? reduce_arm64(cs, insns[i]) : reduce_x86(cs, insns[i]);
    op.address = insns[i].address;
    op.text = insns[i].op_str[0] != '\0'
                  ? fmt::format("{} {}", insns[i].mnemonic, insns[i].op_str)
                  : std::string(insns[i].mnemonic);
    d.ops.push_back(std::move(op));
  }
  if (count > 0) cs_free(insns, count);
  cs_close(&cs);
  if (d.ops.empty()) return std::nullopt;
  return d;
}

// What is known about registers on one path, enough to decide the branches of the accessors'
// prologue: the argument is a live object (not NULL) whose type field is SSL_TYPE_SSL_CONNECTION.
class Tracker {
 public:
  explicit Tracker(const Decoded& d) : zero_reg_(d.zero_reg) { values_[d.arg0] = {kNonNull, 0}; }

  void step(const Op& op) {
    Flags next;  // flags written by anything but a comparison are unknown
    bool keep_flags = !op.sets_flags;
    if (op.value == Op::Value::kCompare || op.value == Op::Value::kTest) {
      next = compare(op);
      keep_flags = false;
    }
    Value result{kUnknown, 0};
    bool assigns = false;
    if (op.kind == Op::kCopy) {
      result = get(op.base);
      assigns = true;
    } else if (op.kind == Op::kLoad && op.disp == 0 && op.size == 4 &&
               get(op.base).kind == kNonNull) {
      result = {kConst, 0};  // the type field: a TLS connection is type 0
      assigns = true;
    } else if (op.value == Op::Value::kImm) {
      result = {kConst, op.width == 4 ? static_cast<int64_t>(static_cast<uint32_t>(op.imm))
                                      : op.imm};
      assigns = true;
    } else if (op.value == Op::Value::kZeroIdiom) {
      result = {kConst, 0};
      assigns = true;
    } else if (op.kind == Op::kAddr || op.value == Op::Value::kAddImm) {
      // The type field minus a constant, as in `lea eax, [rdx - 1]; cmp eax, 1` (QUIC types).
      const Value v = get(op.kind == Op::kAddr ? op.base : op.lhs);
      if (v.kind == kConst) {
        const uint64_t sum = static_cast<uint64_t>(v.c) +
                             static_cast<uint64_t>(op.kind == Op::kAddr ? op.disp : op.imm);
        result = {kConst, static_cast<int64_t>(op.width == 4 ? sum & 0xffffffffu : sum)};
      }
      assigns = true;
    }
    for (unsigned w : op.writes) values_.erase(w);
    if (assigns && result.kind != kUnknown) values_[op.dst] = result;
    if (!keep_flags) flags_ = next;
    if (op.call) {
      values_.clear();
      flags_ = Flags{};
    }
  }

  // Whether `op`'s branch is taken on this path; nullopt when it depends on something unknown.
  std::optional<bool> taken(const Op& op) const {
    switch (op.flow.kind) {
      case Flow::Kind::kJump: return true;
      case Flow::Kind::kZero:
      case Flow::Kind::kNonZero: {
        const Value v = get(op.flow.reg);
        std::optional<bool> zero;
        if (v.kind == kConst) zero = v.c == 0;
        if (v.kind == kNonNull) zero = false;
        if (!zero) return std::nullopt;
        return op.flow.kind == Flow::Kind::kZero ? *zero : !*zero;
      }
      case Flow::Kind::kBitZero:
      case Flow::Kind::kBitNonZero: {
        const Value v = get(op.flow.reg);
        if (v.kind != kConst) return std::nullopt;
        const bool set = (static_cast<uint64_t>(v.c) >> op.flow.bit) & 1;
        return op.flow.kind == Flow::Kind::kBitZero ? !set : set;
      }
      case Flow::Kind::kCond: return evaluate(op.flow.cond);
      default: return std::nullopt;
    }
  }

 private:
  enum Kind { kUnknown, kNonNull, kConst };
  struct Value {
    Kind kind = kUnknown;
    int64_t c = 0;
  };
  // The last comparison: both sides known (`exact`), or only that the left side is a non-NULL
  // pointer compared with zero.
  struct Flags {
    bool exact = false;
    bool nonzero_vs_zero = false;
    bool test = false;
    uint64_t a = 0, b = 0;
    unsigned width = 8;
  };

  Value get(unsigned reg) const {
    if (reg != 0 && reg == zero_reg_) return {kConst, 0};
    auto it = values_.find(reg);
    return it == values_.end() ? Value{} : it->second;
  }

  Flags compare(const Op& op) const {
    Flags f;
    f.test = op.value == Op::Value::kTest;
    f.width = op.width;
    Value a = op.lhs_type_field ? (get(op.lhs).kind == kNonNull ? Value{kConst, 0} : Value{})
                                : get(op.lhs);
    Value b = op.rhs != 0 ? get(op.rhs) : Value{kConst, op.imm};
    if (a.kind == kConst && b.kind == kConst) {
      f.exact = true;
      f.a = static_cast<uint64_t>(a.c);
      f.b = static_cast<uint64_t>(b.c);
    } else if (a.kind == kNonNull && op.width == 8 &&
               ((f.test && op.rhs == op.lhs) || (!f.test && b.kind == kConst && b.c == 0))) {
      f.nonzero_vs_zero = true;
    }
    return f;
  }

  std::optional<bool> evaluate(Cond c) const {
    const Flags& f = flags_;
    if (f.nonzero_vs_zero) {
      switch (c) {
        case Cond::kEq: return false;
        case Cond::kNe: return true;
        case Cond::kUgt: return true;  // CF = 0 and ZF = 0, after test as after cmp with 0
        case Cond::kUge: return true;
        case Cond::kUlt: return false;
        case Cond::kUle: return false;
        default: return std::nullopt;
      }
    }
    if (!f.exact) return std::nullopt;
    const uint64_t mask = f.width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * f.width)) - 1;
    const uint64_t a = f.a & mask, b = f.b & mask;
    const uint64_t r = (f.test ? (a & b) : (a - b)) & mask;
    const uint64_t sign = uint64_t{1} << (8 * std::min(f.width, 8u) - 1);
    auto as_signed = [&](uint64_t v) {
      return (v & sign) ? static_cast<int64_t>(v | ~mask) : static_cast<int64_t>(v);
    };
    // test: CF = OF = 0, so the unsigned and signed relations are those of (a & b) against 0.
    const uint64_t ua = f.test ? r : a, ub = f.test ? 0 : b;
    const int64_t sa = f.test ? as_signed(r) : as_signed(a), sb = f.test ? 0 : as_signed(b);
    switch (c) {
      case Cond::kEq: return r == 0;
      case Cond::kNe: return r != 0;
      case Cond::kUgt: return ua > ub;
      case Cond::kUge: return ua >= ub;
      case Cond::kUlt: return ua < ub;
      case Cond::kUle: return ua <= ub;
      case Cond::kSgt: return sa > sb;
      case Cond::kSge: return sa >= sb;
      case Cond::kSlt: return sa < sb;
      case Cond::kSle: return sa <= sb;
      case Cond::kNeg: return (r & sign) != 0;
      case Cond::kNonNeg: return (r & sign) == 0;
    }
    return std::nullopt;
  }

  std::map<unsigned, Value> values_;
  Flags flags_;
  unsigned zero_reg_;
};

using Path = std::vector<const Op*>;

// The paths a TLS connection can take from the function's entry (fall-through first), each cut
// at a return, a jump out of the decoded code, or kMaxPathLength instructions.
std::vector<Path> connection_paths(const Decoded& d) {
  std::map<uint64_t, size_t> index;
  for (size_t i = 0; i < d.ops.size(); ++i) index[d.ops[i].address] = i;
  std::vector<Path> out;
  struct Pending {
    size_t at;
    Path path;
    Tracker tracker;
  };
  std::vector<Pending> stack{{0, {}, Tracker(d)}};
  while (!stack.empty() && out.size() < kMaxPaths) {
    Pending p = std::move(stack.back());
    stack.pop_back();
    while (true) {
      if (p.at >= d.ops.size() || p.path.size() >= kMaxPathLength) break;
      const Op& op = d.ops[p.at];
      p.path.push_back(&op);
      // A branch depends on the flags and registers before the instruction.
      const std::optional<bool> taken = p.tracker.taken(op);
      p.tracker.step(op);
      if (op.flow.kind == Flow::Kind::kEnd) break;
      if (op.flow.kind == Flow::Kind::kNext) {
        ++p.at;
        continue;
      }
      auto target = index.find(op.flow.target);
      const bool target_known = target != index.end();
      if (taken && *taken) {
        if (!target_known) break;  // a tail call or a jump past the decoded bytes
        p.at = target->second;
      } else if (taken) {
        ++p.at;
      } else {
        if (target_known) stack.push_back({target->second, p.path, p.tracker});
        ++p.at;
      }
    }
    out.push_back(std::move(p.path));
  }
  return out;
}

CodeRead read_of(const Op& op) {
  return {static_cast<uint32_t>(op.disp), op.address, op.text};
}

// Walks `path`, keeping the set of registers that hold the first argument, and calls
// visit(op, from_arg) for each load/address op; stops when visit returns true.
template <typename Visit>
std::optional<CodeRead> walk(const Decoded& d, const Path& path, Visit visit) {
  std::set<unsigned> args{d.arg0};
  for (const Op* op : path) {
    const bool from_arg = args.count(op->base) > 0;
    if ((op->kind == Op::kLoad || op->kind == Op::kAddr) && visit(*op, from_arg)) {
      return read_of(*op);
    }
    for (unsigned w : op->writes) args.erase(w);
    if (op->kind == Op::kCopy && from_arg) args.insert(op->dst);
  }
  return std::nullopt;
}

template <typename Visit>
std::optional<CodeRead> first_read(std::span<const uint8_t> code, uint64_t address,
                                   uint16_t machine, Visit visit) {
  auto d = decode(code, address, machine);
  if (!d) return std::nullopt;
  for (const Path& path : connection_paths(*d)) {
    if (auto r = walk(*d, path, visit)) return r;
  }
  return std::nullopt;
}

std::optional<ClientRandomReads> client_random_on_path(const Decoded& d, const Path& path) {
  // Either the first access from the argument is the client random itself (inline s3), or it
  // loads the s3 pointer and an offset is then added to that pointer.
  std::optional<unsigned> s3_reg;
  ClientRandomReads found;
  std::set<unsigned> args{d.arg0};
  for (const Op* op : path) {
    const bool from_arg = args.count(op->base) > 0;
    if (!s3_reg) {
      if (from_arg && op->disp > 0 && op->kind == Op::kLoad && op->size == 8) {
        s3_reg = op->dst;
        found.s3 = read_of(*op);
        continue;
      }
      if (from_arg && op->disp > 0 && (op->kind == Op::kAddr || op->kind == Op::kLoad)) {
        found.client_random = read_of(*op);
        return found;
      }
    } else {
      if (op->kind == Op::kAddr && op->base == *s3_reg && op->disp > 0) {
        found.client_random = read_of(*op);
        return found;
      }
      if (std::find(op->writes.begin(), op->writes.end(), *s3_reg) != op->writes.end()) {
        return std::nullopt;  // the pointer was overwritten before any offset was added
      }
    }
    for (unsigned w : op->writes) args.erase(w);
    if (op->kind == Op::kCopy && from_arg) args.insert(op->dst);
  }
  return std::nullopt;
}

std::optional<AccessorCode> function_code(const elf::ElfFile& f, const char* name) {
  auto fn = f.find_function(name);
  if (!fn || fn->size == 0) return std::nullopt;
  AccessorCode out;
  out.code.resize(std::min<uint64_t>(fn->size, kMaxCodeBytes));
  int fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  ssize_t n = ::pread(fd, out.code.data(), out.code.size(), static_cast<off_t>(fn->file_offset));
  ::close(fd);
  if (n != static_cast<ssize_t>(out.code.size())) return std::nullopt;
  out.address = fn->value;
  return out;
}

}  // namespace

std::optional<ClientRandomReads> client_random_reads_from_code(std::span<const uint8_t> code,
                                                               uint64_t address,
                                                               uint16_t machine) {
  auto d = decode(code, address, machine);
  if (!d) return std::nullopt;
  for (const Path& path : connection_paths(*d)) {
    if (auto r = client_random_on_path(*d, path)) return r;
  }
  return std::nullopt;
}

std::optional<CodeRead> session_read_from_code(std::span<const uint8_t> code, uint64_t address,
                                               uint16_t machine) {
  return first_read(code, address, machine, [](const Op& op, bool from_arg) {
    return from_arg && op.kind == Op::kLoad && op.size == 8 && op.disp > 0;
  });
}

std::optional<CodeRead> master_key_read_from_code(std::span<const uint8_t> code,
                                                  uint64_t address, uint16_t machine) {
  return first_read(code, address, machine, [](const Op& op, bool from_arg) {
    return from_arg && op.kind == Op::kAddr && op.disp > 0;
  });
}

std::optional<ClientRandomOffsets> client_random_offsets_from_code(std::span<const uint8_t> code,
                                                                   uint64_t address,
                                                                   uint16_t machine) {
  auto r = client_random_reads_from_code(code, address, machine);
  if (!r) return std::nullopt;
  return r->offsets();
}

std::optional<uint32_t> session_offset_from_code(std::span<const uint8_t> code, uint64_t address,
                                                 uint16_t machine) {
  auto r = session_read_from_code(code, address, machine);
  if (!r) return std::nullopt;
  return r->offset;
}

std::optional<uint32_t> master_key_offset_from_code(std::span<const uint8_t> code,
                                                    uint64_t address, uint16_t machine) {
  auto r = master_key_read_from_code(code, address, machine);
  if (!r) return std::nullopt;
  return r->offset;
}

std::optional<ClientRandomOffsets> client_random_offsets(const elf::ElfFile& ssl) {
  auto code = function_code(ssl, "SSL_get_client_random");
  if (!code) return std::nullopt;
  return client_random_offsets_from_code(code->code, code->address, ssl.machine());
}

Accessors read_accessors(const elf::ElfFile& ssl) {
  Accessors a;
  a.machine = ssl.machine();
  a.get_client_random = function_code(ssl, "SSL_get_client_random");
  a.get_session = function_code(ssl, "SSL_get_session");
  a.get_master_key = function_code(ssl, "SSL_SESSION_get_master_key");
  return a;
}

LayoutCheck check_openssl_layout(const Accessors& code, const openssl_layout& layout) {
  LayoutCheck out;
  auto compare = [&](const char* field, const char* fn, uint64_t table, uint64_t offset,
                     const CodeRead& read) {
    if (table == offset) {
      out.checked.push_back(field);
    } else {
      out.mismatches.push_back(fmt::format("{} at {:#x} in {} (`{}` at {:#x}), the table says "
                                           "{:#x}", field, offset, fn, read.instruction,
                                           read.address, table));
    }
  };
  if (code.get_client_random) {
    const auto& c = *code.get_client_random;
    if (auto cr = client_random_reads_from_code(c.code, c.address, code.machine)) {
      // An inline s3 has no load of its own: the client random's instruction shows it.
      compare("s3", "SSL_get_client_random", layout.ssl_s3, cr->offsets().ssl_s3,
              cr->s3 ? *cr->s3 : cr->client_random);
      compare("client_random", "SSL_get_client_random", layout.s3_client_random,
              cr->client_random.offset, cr->client_random);
    }
  }
  if (layout.boringssl) return out;  // the session fields are not used for BoringSSL
  if (code.get_session) {
    const auto& c = *code.get_session;
    if (auto r = session_read_from_code(c.code, c.address, code.machine)) {
      compare("session", "SSL_get_session", layout.ssl_session, r->offset, *r);
    }
  }
  if (code.get_master_key) {
    const auto& c = *code.get_master_key;
    if (auto r = master_key_read_from_code(c.code, c.address, code.machine)) {
      compare("master_key", "SSL_SESSION_get_master_key", layout.session_master_key, r->offset,
              *r);
    }
  }
  return out;
}

LayoutCheck check_openssl_layout(const elf::ElfFile& ssl, const openssl_layout& layout) {
  return check_openssl_layout(read_accessors(ssl), layout);
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
