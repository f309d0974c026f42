// Classic BPF -> eBPF: A, X and M[] become w7, w8 and 16 stack words; packet loads go through
// bpf_skb_load_bytes (big-endian, as classic loads are); a `ret` of non-zero tail-calls the copier.
#include "bpf/classic_filter.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstddef>
#include <vector>

namespace ecapture::bpf {
namespace {

// Classic-only field accessors (linux/filter.h, which clashes with libpcap's header).
constexpr uint16_t rval(uint16_t code) { return code & 0x18; }
constexpr uint16_t miscop(uint16_t code) { return code & 0xf8; }
constexpr uint16_t kRvalA = 0x10;
constexpr uint16_t kMiscTxa = 0x80;
constexpr int kTcxNext = -1;

constexpr uint8_t kCtx = BPF_REG_6, kA = BPF_REG_7, kX = BPF_REG_8, kTmp = BPF_REG_9;
constexpr int16_t kLoadSlot = -72;  // 8 bytes below the 16 words of M[]

int16_t mem_slot(uint32_t k) { return static_cast<int16_t>(-4 * (16 - static_cast<int>(k))); }

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

class Translator {
 public:
  Translator(std::span<const ClassicInsn> f, int prog_array_fd, uint32_t tail_index)
      : f_(f), map_fd_(prog_array_fd), tail_index_(tail_index) {}

  Result<std::vector<bpf_insn>> run() {
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_X, kCtx, BPF_REG_1, 0, 0));
    emit(insn(BPF_ALU | BPF_MOV | BPF_K, kA, 0, 0, 0));
    emit(insn(BPF_ALU | BPF_MOV | BPF_K, kX, 0, 0, 0));
    for (int16_t off = -8; off >= -64; off -= 8) {  // M[] starts zeroed
      emit(insn(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_10, 0, off, 0));
    }
    start_.resize(f_.size() + 1);
    for (size_t i = 0; i < f_.size(); ++i) {
      start_[i] = out_.size();
      RETURN_IF_ERROR(translate(i, f_[i]));
    }
    // Falling off the end is "no match": the no-match exit comes right there. The verifier
    // refuses unreachable instructions, so nothing is emitted that no path reaches.
    start_[f_.size()] = out_.size();
    size_t nomatch = out_.size();
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, kTcxNext));
    emit(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    size_t match = out_.size();
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, kCtx, 0, 0));
    emit(insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, map_fd_));
    emit(insn(0, 0, 0, 0, 0));
    emit(insn(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, static_cast<int32_t>(tail_index_)));
    emit(insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call));
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, kTcxNext));  // no copier
    emit(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for (const Fixup& fx : fixups_) {
      size_t target = fx.target == kMatch ? match : fx.target == kNoMatch ? nomatch
                                                                           : start_[fx.target];
      out_[fx.at].off = static_cast<int16_t>(static_cast<long>(target) -
                                             static_cast<long>(fx.at) - 1);
    }
    return std::move(out_);
  }

 private:
  static constexpr size_t kMatch = static_cast<size_t>(-1);
  static constexpr size_t kNoMatch = static_cast<size_t>(-2);
  struct Fixup {
    size_t at;
    size_t target;  // classic index, kMatch or kNoMatch
  };

  void emit(bpf_insn i) { out_.push_back(i); }
  void jump_to(size_t target) {
    fixups_.push_back({out_.size(), target});
    emit(insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
  }
  void cond_jump(uint8_t code, uint8_t dst, uint8_t src, int32_t imm, size_t target) {
    fixups_.push_back({out_.size(), target});
    emit(insn(code, dst, src, 0, imm));
  }

  // dst = the `size`-byte big-endian value at packet offset k (+ X when indexed); no match
  // when the packet is shorter.
  Result<void> load_packet(uint8_t dst, uint16_t size_code, bool indexed, uint32_t k) {
    int bytes = size_code == BPF_W ? 4 : size_code == BPF_H ? 2 : size_code == BPF_B ? 1 : 0;
    if (bytes == 0) return make_error("unsupported load size");
    if (k >= 0x80000000u) return make_error("Linux ancillary load (k={:#x})", k);
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, kCtx, 0, 0));
    if (indexed) {
      emit(insn(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_2, kX, 0, 0));
      emit(insn(BPF_ALU | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, static_cast<int32_t>(k)));
    } else {
      emit(insn(BPF_ALU | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, static_cast<int32_t>(k)));
    }
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_10, 0, 0));
    emit(insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_3, 0, 0, kLoadSlot));
    emit(insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, bytes));
    emit(insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_skb_load_bytes));
    cond_jump(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 0, kNoMatch);
    emit(insn(BPF_LDX | BPF_MEM | size_code, dst, BPF_REG_10, kLoadSlot, 0));
    if (bytes > 1) emit(insn(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, bytes * 8));
    return {};
  }

  Result<void> translate(size_t i, const ClassicInsn& c) {
    const uint16_t cls = BPF_CLASS(c.code);
    const int32_t k = static_cast<int32_t>(c.k);
    switch (cls) {
      case BPF_LD:
      case BPF_LDX: {
        uint8_t dst = cls == BPF_LD ? kA : kX;
        switch (BPF_MODE(c.code)) {
          case BPF_IMM: emit(insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, k)); return {};
          case BPF_MEM:
            if (c.k >= 16) break;
            emit(insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_10, mem_slot(c.k), 0));
            return {};
          case BPF_LEN:
            emit(insn(BPF_LDX | BPF_MEM | BPF_W, dst, kCtx, offsetof(__sk_buff, len), 0));
            return {};
          case BPF_ABS:
            if (cls != BPF_LD) break;
            return load_packet(kA, BPF_SIZE(c.code), false, c.k);
          case BPF_IND:
            if (cls != BPF_LD) break;
            return load_packet(kA, BPF_SIZE(c.code), true, c.k);
          case 0xa0:  // BPF_MSH: X = 4 * (P[k] & 0xf)
            if (cls != BPF_LDX) break;
            RETURN_IF_ERROR(load_packet(kTmp, BPF_B, false, c.k));
            emit(insn(BPF_ALU | BPF_AND | BPF_K, kTmp, 0, 0, 0xf));
            emit(insn(BPF_ALU | BPF_LSH | BPF_K, kTmp, 0, 0, 2));
            emit(insn(BPF_ALU | BPF_MOV | BPF_X, kX, kTmp, 0, 0));
            return {};
        }
        break;
      }
      case BPF_ST:
      case BPF_STX:
        if (c.k >= 16) break;
        emit(insn(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, cls == BPF_ST ? kA : kX, mem_slot(c.k),
                  0));
        return {};
      case BPF_ALU: {
        const uint16_t op = BPF_OP(c.code);
        if (op == BPF_NEG) {
          emit(insn(BPF_ALU | BPF_NEG, kA, 0, 0, 0));
          return {};
        }
        if (op != BPF_ADD && op != BPF_SUB && op != BPF_MUL && op != BPF_DIV && op != BPF_OR &&
            op != BPF_AND && op != BPF_LSH && op != BPF_RSH && op != BPF_MOD && op != BPF_XOR) {
          break;
        }
        const bool div = op == BPF_DIV || op == BPF_MOD;
        if (BPF_SRC(c.code) == BPF_X) {
          // Classic division by a zero X rejects the packet; eBPF's would yield 0.
          if (div) cond_jump(BPF_JMP32 | BPF_JEQ | BPF_K, kX, 0, 0, kNoMatch);
          emit(insn(BPF_ALU | op | BPF_X, kA, kX, 0, 0));
        } else {
          if (div && c.k == 0) {
            jump_to(kNoMatch);
            return {};
          }
          emit(insn(BPF_ALU | op | BPF_K, kA, 0, 0, k));
        }
        return {};
      }
      case BPF_JMP: {
        const uint16_t op = BPF_OP(c.code);
        if (op == BPF_JA) {
          if (i + 1 + c.k > f_.size()) break;
          jump_to(i + 1 + c.k);
          return {};
        }
        if (op != BPF_JEQ && op != BPF_JGT && op != BPF_JGE && op != BPF_JSET) break;
        if (i + 1 + c.jt > f_.size() || i + 1 + c.jf > f_.size()) break;
        if (BPF_SRC(c.code) == BPF_X) {
          cond_jump(BPF_JMP32 | op | BPF_X, kA, kX, 0, i + 1 + c.jt);
        } else {
          cond_jump(BPF_JMP32 | op | BPF_K, kA, 0, k, i + 1 + c.jt);
        }
        jump_to(i + 1 + c.jf);
        return {};
      }
      case BPF_RET:
        if (rval(c.code) == kRvalA) {
          cond_jump(BPF_JMP32 | BPF_JEQ | BPF_K, kA, 0, 0, kNoMatch);
          jump_to(kMatch);
        } else {
          jump_to(c.k != 0 ? kMatch : kNoMatch);
        }
        return {};
      case BPF_MISC:
        if (miscop(c.code) == kMiscTxa) {
          emit(insn(BPF_ALU | BPF_MOV | BPF_X, kA, kX, 0, 0));
        } else {
          emit(insn(BPF_ALU | BPF_MOV | BPF_X, kX, kA, 0, 0));
        }
        return {};
    }
    return make_error("instruction {} (code {:#06x}, k {:#x}) has no translation", i, c.code,
                      c.k);
  }

  std::span<const ClassicInsn> f_;
  int map_fd_;
  uint32_t tail_index_;
  std::vector<bpf_insn> out_;
  std::vector<size_t> start_;
  std::vector<Fixup> fixups_;
};

}  // namespace

Result<int> load_classic_filter(std::span<const ClassicInsn> filter, int prog_array_fd,
                                uint32_t tail_index, const std::string& name) {
  if (filter.empty() || filter.size() > 4096) {
    return make_error("a classic filter of {} instructions cannot be translated", filter.size());
  }
  Translator t(filter, prog_array_fd, tail_index);
  auto insns = t.run();
  if (!insns.ok()) return make_error("pcap filter in the kernel: {}", insns.error().message);
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name.c_str(), "GPL", insns->data(),
                         insns->size(), nullptr);
  if (fd < 0) {
    // Again with the verifier's log, for the message.
    std::vector<char> log(1 << 20);
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1,
                .log_size = static_cast<uint32_t>(log.size()), .log_buf = log.data());
    int again = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name.c_str(), "GPL", insns->data(),
                              insns->size(), &opts);
    if (again >= 0) return again;
    std::string why(log.data());
    if (why.size() > 400) why = "..." + why.substr(why.size() - 400);
    return make_errno_error(-fd, "the kernel refused the translated pcap filter: {}", why);
  }
  return fd;
}

}  // namespace ecapture::bpf
