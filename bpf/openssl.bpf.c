// SPDX-License-Identifier: GPL-2.0
/* OpenSSL/BoringSSL capture. Plaintext: SSL_write/SSL_write_ex are emitted at their entry (one
 * trap; retries and partial-write continuations are recognised, see tls_write_at_entry); uprobes
 * on SSL_read/SSL_read_ex save the arguments and the uretprobe emits exactly the bytes the call
 * moved, in chunks, with the process and the connection's 4-tuple. While a connection's fd is
 * unknown the per-syscall tracepoints learn it. Keys: after SSL_do_handshake succeeds (or at the
 * next SSL_read/SSL_write entry, for implicit handshakes), the session's secrets are read
 * through the library's layout (the `layouts` map). */
#include "common.bpf.h"
#include "tls_data.bpf.h"
#include "modules/openssl/openssl_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space per capture mode and detected library layout. */
const volatile bool capture_data = true;
const volatile bool capture_keys = false;

/* The key layout of each hooked library: its slot is bits 8-15 of the attach cookie (0 with one
 * target), so that libraries of different versions are hooked by one object. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OPENSSL_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct openssl_layout);
} layouts SEC(".maps");

static __always_inline const struct openssl_layout *layout_of(void *ctx)
{
	__u32 slot = (bpf_get_attach_cookie(ctx) >> 8) & (OPENSSL_MAX_SLOTS - 1);

	return bpf_map_lookup_elem(&layouts, &slot);
}

/* Perf-buffer kernels only: records are reserved in the ring buffer otherwise. */
ECAP_SCRATCH_MAP(keys_scratch, struct openssl_keys_event);

/* (tgid, SSL*) -> first 8 bytes of the client random whose keys were sent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, __u64);
} keys_sent SEC(".maps");

static __always_inline bool all_zero8(const __u8 *p)
{
	return *(const __u64 *)p == 0;
}

/* Fills `k` with the session secrets of `ssl` (version `version`); false while the handshake is
 * not finished (secrets not set yet) or when they were sent already. */
static __always_inline bool fill_keys(const struct openssl_layout *layout,
				      struct openssl_keys_event *k, struct tls_conn_key *key,
				      __u64 ssl, __s32 version)
{
	__u64 *sent, cr_addr, session = 0;

	cr_addr = ssl + layout->s3_client_random;
	if (layout->ssl_s3) {
		__u64 s3 = 0;

		if (bpf_probe_read_user(&s3, sizeof(s3), (void *)(ssl + layout->ssl_s3)) || !s3)
			return false;
		cr_addr = s3 + layout->s3_client_random;
	}
	if (bpf_probe_read_user(k->client_random, sizeof(k->client_random), (void *)cr_addr))
		return false;
	if (all_zero8(k->client_random))
		return false;
	sent = bpf_map_lookup_elem(&keys_sent, key);
	if (sent && *sent == *(__u64 *)k->client_random)
		return false;

	__builtin_memset(k->master_key, 0, sizeof(k->master_key));
	__builtin_memset(k->handshake_secret, 0, OPENSSL_SECRET_MAX * 5);
	if (version == 0x0304) {
		__u64 base = ssl + layout->ssl_early_secret;

		if (!layout->ssl_early_secret)
			return false;
		/* early, handshake, master, resumption, client/server finished, server finished hash,
		 * handshake traffic hash, client/server app traffic, exporter: 64 bytes each. */
		if (bpf_probe_read_user(k->client_app_traffic_secret, OPENSSL_SECRET_MAX,
					(void *)(base + 8 * OPENSSL_SECRET_MAX)))
			return false;
		if (all_zero8(k->client_app_traffic_secret))
			return false; /* handshake not finished */
		bpf_probe_read_user(k->handshake_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 1 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->handshake_traffic_hash, OPENSSL_SECRET_MAX,
				    (void *)(base + 7 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->server_app_traffic_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 9 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->exporter_master_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 10 * OPENSSL_SECRET_MAX));
	} else {
		if (bpf_probe_read_user(&session, sizeof(session),
					(void *)(ssl + layout->ssl_session)) ||
		    !session)
			return false;
		if (bpf_probe_read_user(k->master_key, sizeof(k->master_key),
					(void *)(session + layout->session_master_key)))
			return false;
		if (all_zero8(k->master_key))
			return false;
	}
	return true;
}

/* Reads the session secrets of `ssl` and emits them once per (SSL*, client random). Returns
 * quietly while the handshake is not finished (version or secrets not set yet). */
static __always_inline void check_keys(void *ctx, __u64 id, __u64 ssl, __s32 fd)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = ssl};
	const struct openssl_layout *layout = layout_of(ctx);
	struct openssl_keys_event *k;
	__s32 version = 0;
	__u64 random8;

	if (!layout || layout->boringssl)
		return; /* its secrets come from the derivation probes below */
	if (bpf_probe_read_user(&version, sizeof(version), (void *)(ssl + layout->ssl_version)))
		return;
	if (version < 0x0300 || version > 0x0304)
		return;
	k = ecap_reserve(&keys_scratch, sizeof(*k));
	if (!k)
		return;
	if (!fill_keys(layout, k, &key, ssl, version)) {
		ecap_discard(k);
		return;
	}
	k->kind = TLS_RECORD_KEYS;
	k->version = version;
	k->conn_id = ssl;
	ECAP_FILL_TASK(k, id);
	if (fd < 0)
		fd = tls_cached_fd(id, ssl);
	k->fd = fd;
	__builtin_memset(&k->tuple, 0, sizeof(k->tuple));
	ecap_fill_tuple(fd, &k->tuple);
	random8 = *(__u64 *)k->client_random;
	ecap_submit(ctx, k, sizeof(*k));
	ecap_map_update(&keys_sent, &key, &random8, BPF_ANY);
}

/* ---- BoringSSL: secrets where they are derived ---- */

struct bssl_hkdf_call {
	__u64 ssl;
	__u64 out;
	__u32 out_len;
	__s32 fd;
	__u8 label_len;
	char label[OPENSSL_LABEL_MAX];
};

/* LRU: an HKDF_expand whose thread dies inside it leaves nothing behind for long. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct bssl_hkdf_call);
} bssl_hkdf_calls SEC(".maps");

ECAP_SCRATCH_MAP(secret_scratch, struct openssl_secret_event);

/* The SSL object (and its fd when known) of the SSL call this thread is inside, if any. */
static __always_inline bool current_ssl(__u64 id, __u64 *ssl, __s32 *fd)
{
	struct tls_call *st = bpf_map_lookup_elem(&tls_active_calls, &id);

	if (!st || st->phase != TLS_PHASE_IN_CALL)
		return false;
	*ssl = st->conn;
	*fd = st->fd;
	if (*fd < 0)
		*fd = tls_cached_fd(id, st->conn);
	return true;
}

/* Reserves a secret record and fills everything but the client random, label and secret;
 * the caller submits or discards it. */
static __always_inline struct openssl_secret_event *secret_record(__u64 id, __u64 ssl, __s32 fd)
{
	struct openssl_secret_event *e = ecap_reserve(&secret_scratch, sizeof(*e));

	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = TLS_RECORD_SECRET;
	e->fd = fd;
	e->conn_id = ssl;
	ECAP_FILL_TASK(e, id);
	ecap_fill_tuple(fd, &e->tuple);
	return e;
}

/* HKDF_expand(out, out_len, digest, prk, prk_len, info, info_len): TLS 1.3's Derive-Secret. The
 * info is the HkdfLabel {u16 length, u8 label_len, "tls13 " label, context}; only the traffic
 * secrets' labels (16 to 18 bytes with the prefix) are kept. */
SEC("uprobe")
int probe_bssl_hkdf_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct bssl_hkdf_call call = {};
	__u8 info[3 + 18] = {};
	__u64 out_len = PT_REGS_PARM2(ctx);

	if (ecap_filtered_out(id) || !current_ssl(id, &call.ssl, &call.fd))
		return 0;
	if (out_len == 0 || out_len > OPENSSL_SECRET_MAX)
		return 0;
	if (bpf_probe_read_user(info, 3 + 16, (const void *)PT_REGS_PARM6(ctx)))
		return 0;
	if (info[2] < 16 || info[2] > 18)
		return 0;
	if (info[2] > 16 && bpf_probe_read_user(info, 3 + 18, (const void *)PT_REGS_PARM6(ctx)))
		return 0;
	if (info[3] != 't' || info[4] != 'l' || info[5] != 's' || info[6] != '1' || info[7] != '3' ||
	    info[8] != ' ')
		return 0;
	call.label_len = info[2] - 6;
	__builtin_memcpy(call.label, &info[9], 12);
	call.out = PT_REGS_PARM1(ctx);
	call.out_len = out_len;
	ecap_map_update(&bssl_hkdf_calls, &id, &call, BPF_ANY);
	return 0;
}

/* Reads the secret HKDF_expand wrote and the connection's client random into `e`. */
static __always_inline bool fill_hkdf_secret(void *ctx, struct openssl_secret_event *e,
					     struct bssl_hkdf_call *call)
{
	const struct openssl_layout *layout = layout_of(ctx);
	__u64 s3 = 0;
	__u32 n = call->out_len;

	if (n > OPENSSL_SECRET_MAX || !layout)
		return false;
	if (bpf_probe_read_user(e->secret, n, (const void *)call->out))
		return false;
	/* Pointers are untagged first: arm64 top-byte tags (MTE) are not part of the address. */
	if (bpf_probe_read_user(&s3, sizeof(s3),
				(void *)((call->ssl & 0x00ffffffffffffffULL) + layout->ssl_s3)) ||
	    !(s3 &= 0x00ffffffffffffffULL) ||
	    bpf_probe_read_user(e->client_random, sizeof(e->client_random),
				(void *)(s3 + layout->s3_client_random))) {
		ecap_count(ECAP_CNT_READ_FAILED);
		return false;
	}
	e->secret_len = n;
	e->label_len = call->label_len;
	__builtin_memcpy(e->label, call->label, sizeof(e->label));
	return true;
}

SEC("uretprobe")
int probe_bssl_hkdf_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct bssl_hkdf_call *call;
	struct openssl_secret_event *e;

	if (ecap_filtered_out(id))
		return 0;
	call = bpf_map_lookup_elem(&bssl_hkdf_calls, &id);
	if (!call)
		return 0;
	if ((int)PT_REGS_RC(ctx) == 1) {
		e = secret_record(id, call->ssl, call->fd);
		if (e) {
			if (fill_hkdf_secret(ctx, e, call))
				ecap_submit(ctx, e, sizeof(*e));
			else
				ecap_discard(e);
		}
	}
	bpf_map_delete_elem(&bssl_hkdf_calls, &id);
	return 0;
}

/* CRYPTO_tls1_prf(digest, out, out_len, secret, secret_len, label, label_len, seed1, seed1_len,
 * seed2, seed2_len): for "key expansion" the secret is the TLS 1.2 master secret and seed2 the
 * client random. Arguments past the sixth (x86-64) or eighth (arm64) are on the stack. */
SEC("uprobe")
int probe_bssl_tls1_prf(struct pt_regs *ctx)
{
	static const char kExpansion[] = "key expansion";
	__u64 id = bpf_get_current_pid_tgid();
	struct openssl_secret_event *e;
	__u64 ssl = 0, sp = PT_REGS_SP(ctx), label_len = 0, seed2 = 0, random8;
	__s32 fd = -1;
	char label[sizeof(kExpansion) - 1];
	struct tls_conn_key key = {};
	__u64 *sent;

	if (ecap_filtered_out(id) || !current_ssl(id, &ssl, &fd))
		return 0;
	if (PT_REGS_PARM5(ctx) != 48)
		return 0;
#if defined(__TARGET_ARCH_x86)
	bpf_probe_read_user(&label_len, sizeof(label_len), (void *)(sp + 8));
	bpf_probe_read_user(&seed2, sizeof(seed2), (void *)(sp + 32));
#elif defined(__TARGET_ARCH_arm64)
	label_len = ((const __u64 *)ctx)[6]; /* x6 */
	bpf_probe_read_user(&seed2, sizeof(seed2), (void *)(sp + 8));
#endif
	if (label_len != sizeof(label) || !seed2)
		return 0;
	if (bpf_probe_read_user(label, sizeof(label), (const void *)PT_REGS_PARM6(ctx)))
		return 0;
	for (int i = 0; i < (int)sizeof(label); i++) {
		if (label[i] != kExpansion[i])
			return 0;
	}
	/* Called once per direction's keys: report the session once. */
	key.tgid = id >> 32;
	key.conn = ssl;
	e = secret_record(id, ssl, fd);
	if (!e)
		return 0;
	if (bpf_probe_read_user(e->secret, 48, (const void *)PT_REGS_PARM4(ctx)) ||
	    bpf_probe_read_user(e->client_random, sizeof(e->client_random), (const void *)seed2)) {
		ecap_count(ECAP_CNT_READ_FAILED);
		ecap_discard(e);
		return 0;
	}
	random8 = *(__u64 *)e->client_random;
	sent = bpf_map_lookup_elem(&keys_sent, &key);
	if (sent && *sent == random8) {
		ecap_discard(e);
		return 0;
	}
	e->secret_len = 48;
	e->label_len = sizeof(label);
	__builtin_memcpy(e->label, label, sizeof(label));
	ecap_submit(ctx, e, sizeof(*e));
	ecap_map_update(&keys_sent, &key, &random8, BPF_ANY);
	return 0;
}

static __always_inline int enter_call(void *ctx, void *ssl, const void *buf, void *len_ptr,
				      __u8 direction, __u8 api)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ecap_filtered_out(id))
		return 0;
	if (!capture_data && api != TLS_API_HANDSHAKE) {
		/* keylog/pcap: SSL_read/SSL_write entries only look for finished handshakes. */
		check_keys(ctx, id, (__u64)ssl, -1);
		return 0;
	}
	return tls_enter_ex(id, (__u64)ssl, (__u64)buf, (__u64)len_ptr, direction, api);
}

static __always_inline int exit_call(struct pt_regs *ctx, bool ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call st;
	__u64 len;

	if (ecap_filtered_out(id) || !tls_take_call(ctx, id, &st))
		return 0;
	/* Even a failed call (WANT_WRITE, WANT_READ) shows the socket: its retry knows the fd. */
	tls_remember_fd(id, st.conn, st.fd);
	if (st.api == TLS_API_HANDSHAKE) {
		if ((int)PT_REGS_RC(ctx) == 1)
			check_keys(ctx, id, st.conn, st.fd);
		return 0;
	}
	if (ex) {
		__u64 n = 0;

		if ((int)PT_REGS_RC(ctx) != 1)
			return 0;
		if (bpf_probe_read_user(&n, sizeof(n), (const void *)st.len_ptr))
			return 0;
		len = n;
	} else {
		int ret = (int)PT_REGS_RC(ctx);

		if (ret <= 0)
			return 0;
		len = ret;
	}
	if (len == 0)
		return 0;
	return tls_emit_data(ctx, id, &st, len);
}

/* One entry and one return program serve SSL_read, SSL_write and their _ex variants: the attach
 * cookie says which function (enum tls_api). Two programs mean two links to detach. Where the
 * kernel has session uprobes, the writes use probe_openssl_write_session instead. */
SEC("uprobe")
int probe_openssl_rw_enter(struct pt_regs *ctx)
{
	__u8 api = (__u8)bpf_get_attach_cookie(ctx);
	bool ex = api == TLS_API_READ_EX || api == TLS_API_WRITE_EX;
	__u8 dir = (api == TLS_API_WRITE || api == TLS_API_WRITE_EX) ? ECAP_DIR_WRITE
								     : ECAP_DIR_READ;

	return enter_call(ctx, (void *)PT_REGS_PARM1(ctx), (void *)PT_REGS_PARM2(ctx),
			  ex ? (void *)PT_REGS_PARM4(ctx) : NULL, dir, api);
}

SEC("uretprobe")
int probe_openssl_rw_exit(struct pt_regs *ctx)
{
	__u8 api = (__u8)bpf_get_attach_cookie(ctx);

	return exit_call(ctx, api == TLS_API_READ_EX || api == TLS_API_WRITE_EX);
}

extern bool bpf_session_is_return(void) __ksym;

/* SSL_write and SSL_write_ex as a session uprobe (loaded only where the kernel has them): on a
 * connection whose fd is known the bytes are emitted at the entry and the entry returns 1, so no
 * return probe runs (one trap per call); otherwise the call goes the read path's way (the return
 * probe emits what the call wrote). */
SEC("uprobe")
int probe_openssl_write_session(struct pt_regs *ctx)
{
	__u8 api = (__u8)bpf_get_attach_cookie(ctx);
	bool ex = api == TLS_API_WRITE_EX;
	__u64 id = bpf_get_current_pid_tgid(), ssl, num;
	__s32 fd;

	if (bpf_session_is_return())
		return exit_call(ctx, ex);
	if (ecap_filtered_out(id))
		return 1;
	ssl = PT_REGS_PARM1(ctx);
	if (!capture_data) {
		check_keys(ctx, id, ssl, -1);
		return 1;
	}
	fd = tls_cached_fd(id, ssl);
	if (fd < 0) {
		tls_enter_ex(id, ssl, PT_REGS_PARM2(ctx), ex ? PT_REGS_PARM4(ctx) : 0, ECAP_DIR_WRITE,
			     api);
		return 0;
	}
	/* SSL_write(SSL *, const void *, int num); SSL_write_ex(..., size_t num, size_t *) */
	num = ex ? PT_REGS_PARM3(ctx) : (__u64)(__s64)(int)PT_REGS_PARM3(ctx);
	tls_write_at_entry(ctx, id, ssl, fd, PT_REGS_PARM2(ctx), num, api);
	return 1;
}

TLS_DEFINE_FD_LEARNERS()
TLS_DEFINE_EXIT_CLEANUP()
