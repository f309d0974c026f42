/* Packets captured by bpf/tc.bpf.c, shared with C++. */
#ifndef ECAP_TC_ABI_H
#define ECAP_TC_ABI_H

#include "ecap_abi.h"

/* Largest packet copied whole: a 64 KiB IP packet (lo's GSO packets) plus its Ethernet header. */
#define TC_PACKET_MAX 65552

struct tc_packet_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC */
	__u32 ifindex;
	__u32 len;     /* skb->len */
	__u32 caplen;  /* bytes that follow */
	__u8 egress;   /* 1: leaving the host, 0: arriving */
	__u8 pad[3];
	/* followed by caplen bytes starting at the link-layer header */
};

#endif /* ECAP_TC_ABI_H */
