/* Picks the committed vmlinux.h for the target architecture (generated with
 * `bpftool btf dump file /sys/kernel/btf/vmlinux format c`). */
#ifndef ECAPTURE_VMLINUX_DISPATCH_H
#define ECAPTURE_VMLINUX_DISPATCH_H
#if defined(__TARGET_ARCH_x86)
#include "x86/vmlinux.h"
#elif defined(__TARGET_ARCH_arm64)
#include "arm64/vmlinux.h"
#else
#error "unsupported BPF target architecture: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif
#endif
