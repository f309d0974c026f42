// SPDX-License-Identifier: GPL-2.0
/* Whole-packet capture on an interface (tcx ingress/egress): every packet is copied to the ring
 * buffer with its length and direction. Pure observation: always TC_ACT_UNSPEC/next. With a pcap
 * filter, user space attaches the filter translated to eBPF (src/bpf/classic_filter.cc) instead,
 * which tail-calls these programs through `capture_progs` only for the packets it accepts. */
#include "common.bpf.h"
#include "tc_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define TCX_NEXT -1

struct pkt_scratch {
	struct tc_packet_event hdr;
	__u8 data[TC_PACKET_MAX];
};

/* One slot per CPU; an array, not per-CPU, because per-CPU values are limited to 32 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct pkt_scratch);
} pkt_scratch SEC(".maps");

/* 0: ecap_tc_ingress, 1: ecap_tc_egress (filled by user space when a filter is given). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} capture_progs SEC(".maps");

static __always_inline int capture(struct __sk_buff *skb, __u8 egress)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct pkt_scratch *s = bpf_map_lookup_elem(&pkt_scratch, &cpu);
	__u32 len = skb->len;
	__u64 cap = len; /* 64-bit: no zero-extension copy between the check and the call */

	if (!s)
		return TCX_NEXT;
	if (cap > TC_PACKET_MAX)
		cap = TC_PACKET_MAX;
	/* Opaque to the compiler, so the check below bounds the very register the helper gets. */
	asm volatile("" : "+r"(cap));
	if (cap == 0 || cap > TC_PACKET_MAX)
		return TCX_NEXT;
	s->hdr.timestamp_ns = bpf_ktime_get_ns();
	s->hdr.ifindex = skb->ifindex;
	s->hdr.len = len;
	s->hdr.caplen = cap;
	s->hdr.egress = egress;
	if (bpf_skb_load_bytes(skb, 0, s->data, cap))
		return TCX_NEXT;
	ecap_output(skb, s, sizeof(s->hdr) + cap);
	return TCX_NEXT;
}

SEC("tc")
int ecap_tc_ingress(struct __sk_buff *skb)
{
	return capture(skb, 0);
}

SEC("tc")
int ecap_tc_egress(struct __sk_buff *skb)
{
	return capture(skb, 1);
}
