/* Plain-C types shared by every module's BPF program and the C++ side. Fixed-width fields and
 * explicit padding only: the C++ side static_asserts the layout. */
#ifndef ECAP_ABI_H
#define ECAP_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define ECAP_TASK_COMM_LEN 16

enum ecap_direction {
	ECAP_DIR_READ = 0,
	ECAP_DIR_WRITE = 1,
};

/* The TCP/UDP endpoints of a socket, as the kernel's struct sock holds them. Host byte order
 * ports; addresses in network order (IPv4 in the first 4 bytes). family 0: not a socket. */
struct ecap_sock_tuple {
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* Indexes of the per-CPU counter array `ecap_counters` every module program has. */
enum ecap_counter {
	ECAP_CNT_LOST = 0,        /* output buffer full: record dropped */
	ECAP_CNT_READ_FAILED = 1, /* user memory could not be read */
	ECAP_CNT_MAP_FAILED = 2,  /* a map update failed (map full, no memory): state was lost */
	ECAP_CNT_MAX = 4,
};

#endif /* ECAP_ABI_H */
