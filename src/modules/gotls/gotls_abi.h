/* Events of the Go crypto/tls module (bpf/gotls.bpf.c), shared with C++. Plaintext records are
 * the shared struct tls_data_event (tls_abi.h); conn_id is the *tls.Conn. */
#ifndef ECAP_GOTLS_ABI_H
#define ECAP_GOTLS_ABI_H

#include "tls_abi.h"

enum gotls_api {
	GOTLS_API_WRITE = TLS_API_MODULE, /* (*Conn).writeRecordLocked, application data records */
	GOTLS_API_READ = TLS_API_MODULE + 1, /* (*Conn).Read, at each RET */
};

/* Attach cookies: which hook a shared program serves. */
enum gotls_hook {
	GOTLS_HOOK_HANDSHAKE = 1, /* (*Conn).clientHandshake / serverHandshake entry: g -> conn */
};

#define GOTLS_LABEL_MAX 32
#define GOTLS_RANDOM_MAX 32
#define GOTLS_SECRET_MAX 64

/* One (*Config).writeKeyLog call: label, client random and secret as Go passed them. */
struct gotls_keys_event {
	__u8 kind; /* TLS_RECORD_KEYS */
	__u8 label_len;
	__u8 random_len;
	__u8 secret_len;
	__s32 fd; /* of the connection doing the handshake, -1 when unknown */
	__u64 timestamp_ns;
	__u64 conn_id; /* *tls.Conn, 0 when unknown */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 pad;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	char label[GOTLS_LABEL_MAX];
	__u8 client_random[GOTLS_RANDOM_MAX];
	__u8 secret[GOTLS_SECRET_MAX];
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
};

/* Argument words (receiver = word 0; a string is 2 words, a slice 3) of the hooked functions. */
#define GOTLS_WRITE_TYPE 1    /* writeRecordLocked(c, typ recordType, data []byte) */
#define GOTLS_WRITE_DATA 2
#define GOTLS_WRITE_LEN 3
#define GOTLS_READ_BUF 1      /* Read(c, b []byte) (n int, err error) */
#define GOTLS_READ_RESULT_N 4 /* n: first result, after 4 argument words */
#define GOTLS_KEYLOG_LABEL 1  /* writeKeyLog(cfg, label string, clientRandom, secret []byte) */
#define GOTLS_KEYLOG_LABEL_LEN 2
#define GOTLS_KEYLOG_RANDOM 3
#define GOTLS_KEYLOG_RANDOM_LEN 4
#define GOTLS_KEYLOG_SECRET 6
#define GOTLS_KEYLOG_SECRET_LEN 7

/* tls.Conn starts with `conn net.Conn` (itab, data); the data of a TCP connection is a
 * *net.TCPConn whose first word is the *netFD; netFD.pfd.Sysfd follows poll.FD's 16-byte fdMutex.
 * 64-bit layouts, unchanged since Go 1.9. */
#define GOTLS_CONN_IFACE_DATA 8
#define GOTLS_NETFD_SYSFD 16

#endif /* ECAP_GOTLS_ABI_H */
