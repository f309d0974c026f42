/* Records of the gnutls key path (bpf/tlslib.bpf.c), shared with C++. Data records are the
 * shared struct tls_data_event (tls_abi.h). */
#ifndef ECAP_TLSLIB_ABI_H
#define ECAP_TLSLIB_ABI_H

#include "tls_abi.h"

#define GNUTLS_RECORD_KEYS 16 /* first byte of a gnutls_keys_event (data kinds are 0..2) */
#define GNUTLS_SECRET_MAX 64
#define GNUTLS_TLS13_SECRETS 5 /* hs client, hs server, app client, app server, exporter */
#define GNUTLS_MAX_SLOTS 64    /* libraries with their own layout (a power of two) */

/* Where GnuTLS keeps the secrets, from the gnutls_session_t (per hooked library's version). */
struct gnutls_layout {
	__u32 cs;              /* const gnutls_cipher_suite_entry_st *cs */
	__u32 cs_id;           /* uint8_t id[2] in the cipher suite entry */
	__u32 prf;             /* const mac_entry_st *prf */
	__u32 prf_output_size; /* unsigned output_size in the mac entry */
	__u32 master_secret;   /* uint8_t master_secret[48] */
	__u32 client_random;   /* uint8_t client_random[32] */
	__u32 tls13_secrets;   /* hs_ckey; the others follow at tls13_stride */
	__u32 tls13_stride;
};

/* The secrets of one session once gnutls_handshake returned 0. */
struct gnutls_keys_event {
	__u8 kind; /* GNUTLS_RECORD_KEYS */
	__u8 cs_id[2];
	__u8 pad;
	__u32 hash_len; /* the PRF's output size: length of the TLS 1.3 secrets */
	__u64 timestamp_ns;
	__u64 conn_id; /* the gnutls_session_t */
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u32 uid;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	__u8 client_random[32];
	__u8 master_secret[48];
	__u8 tls13[GNUTLS_TLS13_SECRETS][GNUTLS_SECRET_MAX];
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
};

#endif /* ECAP_TLSLIB_ABI_H */
