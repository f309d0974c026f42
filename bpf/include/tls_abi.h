/* The plaintext record every TLS module's kernel side emits (openssl, gnutls, nss, gotls), shared
 * with C++ (src/tls/chunk_assembler). Module-specific records (keys, secrets) use kinds from
 * TLS_RECORD_MODULE on and live in the module's own ABI header. */
#ifndef ECAP_TLS_ABI_H
#define ECAP_TLS_ABI_H

#include "ecap_abi.h"

/* Which library call a data record comes from (also the attach cookie of the data probes). */
enum tls_api {
	TLS_API_READ = 0,
	TLS_API_WRITE = 1,
	TLS_API_READ_EX = 2,
	TLS_API_WRITE_EX = 3,
	TLS_API_HANDSHAKE = 4, /* handshake functions: keys only */
};

/* Every record in a TLS module's ring buffer starts with this byte. */
enum tls_record_kind {
	TLS_RECORD_DATA = 0,
	/* The fd of conn_id became known after its data was emitted with fd -1 (libraries writing to
	 * memory BIOs, like node's, touch the socket only after the TLS call): fd and tuple are set,
	 * data_len is 0. Same layout as a data record. */
	TLS_RECORD_CONN = 1,
	TLS_RECORD_MODULE = 2, /* the first kind a module may define for its own records */
};

struct tls_data_event {
	__u8 kind;      /* enum tls_record_kind */
	__u8 direction; /* enum ecap_direction */
	__u8 api;       /* enum tls_api */
	__u8 pad;
	__s32 fd; /* -1 when unknown */
	__u64 timestamp_ns; /* CLOCK_MONOTONIC at the return of the call */
	__u64 conn_id;      /* the library's connection object (SSL*, gnutls_session_t, ...) */
	__u64 total_len;    /* bytes the call moved */
	__u64 offset;       /* where data[] starts within those bytes */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 data_len;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	/* followed by data_len bytes of plaintext */
};

/* Plaintext is emitted in chunks of at most TLS_CHUNK bytes; one call of any size produces
 * ceil(len / TLS_CHUNK) records with increasing `offset`. Header + chunk fill exactly 32 KiB,
 * the largest per-CPU map value the kernel allows (and below the 64 KiB perf record limit). */
#define TLS_RECORD_MAX 32768
#define TLS_CHUNK (TLS_RECORD_MAX - sizeof(struct tls_data_event))

#endif /* ECAP_TLS_ABI_H */
