// Classic BPF (libpcap's compiled filters) translated to an eBPF tc program that tail-calls the
// packet copier only for matching packets, so non-matching packets never reach user space.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/result.h"

namespace ecapture::bpf {

// One classic BPF instruction, laid out as the kernel's struct sock_filter and libpcap's
// struct bpf_insn (kept free of both headers: they cannot share a translation unit with libbpf).
struct ClassicInsn {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
};

// Loads `filter` (run against the Ethernet frame at skb->data) as a BPF_PROG_TYPE_SCHED_CLS
// program returning TCX_NEXT always; a packet it accepts first goes through
// bpf_tail_call(prog_array_fd, tail_index). Fails on instructions it cannot translate (libpcap's
// Linux ancillary loads, which a pcap_open_dead compile never emits), naming the instruction.
// The caller owns the returned program fd.
Result<int> load_classic_filter(std::span<const ClassicInsn> filter, int prog_array_fd,
                               uint32_t tail_index, const std::string& name);

}  // namespace ecapture::bpf
