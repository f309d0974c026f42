/* Events of the OpenSSL/BoringSSL module (bpf/openssl.bpf.c), shared with C++. */
#ifndef ECAP_OPENSSL_ABI_H
#define ECAP_OPENSSL_ABI_H

#include "ecap_abi.h"

enum openssl_api {
	OPENSSL_API_READ = 0,
	OPENSSL_API_WRITE = 1,
	OPENSSL_API_READ_EX = 2,
	OPENSSL_API_WRITE_EX = 3,
};

enum openssl_record_kind {
	OPENSSL_RECORD_DATA = 0,
	/* The fd of conn_id became known after its data was emitted with fd -1 (libraries writing to
	 * memory BIOs, like node's, touch the socket only after the SSL call): fd and tuple are set,
	 * data_len is 0. */
	OPENSSL_RECORD_CONN = 1,
};

struct openssl_data_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC at the return of the call */
	__u64 conn_id;      /* the SSL* of the call */
	__u64 total_len;    /* bytes the call moved */
	__u64 offset;       /* where data[] starts within those bytes */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 fd; /* -1 when unknown */
	__u32 data_len;
	__u8 direction; /* enum ecap_direction */
	__u8 api;       /* enum openssl_api */
	__u8 kind;      /* enum openssl_record_kind */
	__u8 pad;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	/* followed by data_len bytes of plaintext */
};

/* Plaintext is emitted in chunks of at most OPENSSL_CHUNK bytes; one call of any size produces
 * ceil(len / OPENSSL_CHUNK) records with increasing `offset`. Header + chunk fill exactly 32 KiB,
 * the largest per-CPU map value the kernel allows (and below the 64 KiB perf record limit). */
#define OPENSSL_RECORD_MAX 32768
#define OPENSSL_CHUNK (OPENSSL_RECORD_MAX - sizeof(struct openssl_data_event))

#endif /* ECAP_OPENSSL_ABI_H */
