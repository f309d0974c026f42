/* Key records and library layouts of the OpenSSL/BoringSSL module (bpf/openssl.bpf.c), shared
 * with C++. Its plaintext records are the shared struct tls_data_event (tls_abi.h). */
#ifndef ECAP_OPENSSL_ABI_H
#define ECAP_OPENSSL_ABI_H

#include "tls_abi.h"

#define OPENSSL_SECRET_MAX 64 /* EVP_MAX_MD_SIZE */

/* Secrets of one TLS session, read from the library's structs once the handshake is done. TLS 1.2:
 * master_key. TLS 1.3: the secrets as OpenSSL keeps them (64-byte buffers; the hash length is
 * found in user space). */
struct openssl_keys_event {
	__u8 kind; /* TLS_RECORD_KEYS */
	__u8 pad[3];
	__u32 version; /* TLS1_2_VERSION 0x0303, TLS1_3_VERSION 0x0304, ... */
	__u64 timestamp_ns;
	__u64 conn_id;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u32 uid;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	__u8 client_random[32];
	__u8 master_key[48];
	__u8 handshake_secret[OPENSSL_SECRET_MAX];
	__u8 handshake_traffic_hash[OPENSSL_SECRET_MAX];
	__u8 client_app_traffic_secret[OPENSSL_SECRET_MAX];
	__u8 server_app_traffic_secret[OPENSSL_SECRET_MAX];
	__u8 exporter_master_secret[OPENSSL_SECRET_MAX];
};

#define OPENSSL_LABEL_MAX 16
/* Libraries one capture can hook at once with their own key layout (a power of two). */
#define OPENSSL_MAX_SLOTS 64

/* BoringSSL frees and wipes its handshake state before SSL_do_handshake returns, so its secrets are
 * taken one by one where they are derived (libcrypto's HKDF_expand for TLS 1.3, CRYPTO_tls1_prf's
 * "key expansion" for TLS 1.2), while the thread is inside an SSL call. */
struct openssl_secret_event {
	__u8 kind;       /* TLS_RECORD_SECRET */
	__u8 label_len;  /* bytes used in label[] */
	__u8 secret_len; /* bytes used in secret[] */
	__u8 pad;
	__s32 fd; /* -1 when unknown */
	__u64 timestamp_ns;
	__u64 conn_id; /* the SSL* */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 pad2;
	char comm[ECAP_TASK_COMM_LEN];
	struct ecap_sock_tuple tuple;
	__u8 client_random[32];
	/* TLS 1.3: the HKDF label without its "tls13 " prefix ("c hs traffic", "exp master", ...);
	 * TLS 1.2: "key expansion", whose input secret is the master secret. */
	char label[OPENSSL_LABEL_MAX];
	__u8 secret[OPENSSL_SECRET_MAX];
};

/* Where a library keeps what openssl_keys_event needs (the `layouts` map, one per library). Offsets
 * are from the SSL* (or from the s3 struct / the session), 0 where the layout lacks the field. */
struct openssl_layout {
	__u32 ssl_version;       /* int version */
	__u32 ssl_session;       /* SSL_SESSION *session */
	__u32 ssl_s3;            /* pointer to the s3 state; 0: s3 is inline in the SSL struct */
	__u32 s3_client_random;  /* client_random[32], from the s3 pointer or from the SSL* */
	__u32 session_master_key_len; /* master_key_length (informational) */
	__u32 session_master_key;     /* master_key[] */
	__u32 ssl_early_secret;  /* TLS 1.3: early_secret[64]; the others follow at fixed steps */
	__u32 boringssl;         /* 1: secrets come as openssl_secret_event, only ssl_s3 and
				  * s3_client_random are used */
};

#endif /* ECAP_OPENSSL_ABI_H */
