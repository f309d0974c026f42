// SPDX-License-Identifier: GPL-2.0
// Empty uprobe + uretprobe: the floor cost of hooking a function (two traps per call, no work).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("uprobe")
int empty_enter(struct pt_regs *ctx)
{
	return 0;
}

SEC("uretprobe")
int empty_exit(struct pt_regs *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
