/* The TLS plaintext record every TLS module (tls, gotls, gnutls, nss) sends, shared by their BPF
 * programs (tls_emit.bpf.h, tls_data.bpf.h) and the C++ chunk assembler. A module's own key or
 * secret records live in its module ABI header. */
#ifndef ECAP_TLS_ABI_H
#define ECAP_TLS_ABI_H

#include "ecap_abi.h"

/* Which library call produced a record (the attach cookie of the data probes). Modules number
 * their own calls from TLS_API_MODULE on. */
enum tls_api {
	TLS_API_READ = 0,
	TLS_API_WRITE = 1,
	TLS_API_READ_EX = 2,
	TLS_API_WRITE_EX = 3,
	TLS_API_HANDSHAKE = 4, /* keys only */
	TLS_API_MODULE = 16,
};

/* Every record in a TLS module's ring buffer starts with this byte. */
enum tls_record_kind {
	TLS_RECORD_DATA = 0,
	/* The fd of conn_id became known after its data was emitted with fd -1 (libraries writing to
	 * memory BIOs, like node's, touch the socket only after the SSL call): fd and tuple are set,
	 * data_len is 0. Same layout as a data record. */
	TLS_RECORD_CONN = 1,
	TLS_RECORD_KEYS = 2,   /* a module's keys record */
	TLS_RECORD_SECRET = 3, /* a module's single-secret record (BoringSSL) */
};

struct tls_data_event {
	__u8 kind;      /* enum tls_record_kind */
	__u8 direction; /* enum ecap_direction */
	__u8 api;       /* enum tls_api, or the module's own */
	__u8 pad;
	__s32 fd;           /* -1 when unknown */
	__u64 timestamp_ns; /* CLOCK_MONOTONIC when the call's bytes were taken */
	__u64 conn_id;      /* the library's connection object (SSL*, session, PRFileDesc*) */
	__u64 total_len;    /* bytes the call moved */
	__u64 offset;       /* where data[] starts within those bytes */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 data_len;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
	/* followed by data_len bytes of plaintext */
};

/* Plaintext is emitted in chunks of at most TLS_CHUNK bytes; one call of any size produces
 * ceil(len / TLS_CHUNK) records with increasing `offset`. Header + chunk fill exactly 32 KiB,
 * the largest per-CPU map value the kernel allows (and below the 64 KiB perf record limit). */
#define TLS_RECORD_MAX 32768
#define TLS_CHUNK (TLS_RECORD_MAX - sizeof(struct tls_data_event))

#endif /* ECAP_TLS_ABI_H */
