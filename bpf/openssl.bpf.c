// SPDX-License-Identifier: GPL-2.0
/* OpenSSL/BoringSSL capture. Plaintext: uprobes on SSL_read/SSL_write (and the _ex variants) save
 * the arguments, a syscall tracepoint inside the call learns the socket fd, and the uretprobe
 * emits exactly the bytes the call moved, in chunks, with the process and the connection's
 * 4-tuple. Keys: after SSL_do_handshake succeeds (or at the next SSL_read/SSL_write entry, for
 * implicit handshakes), the session's secrets are read through the layout in rodata. */
#include "common.bpf.h"
#include "modules/openssl/openssl_abi.h"
#include "tls_data.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space per capture mode and detected library layout. */
const volatile bool capture_data = true;
const volatile bool capture_keys = false;
const volatile struct openssl_layout layout = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct openssl_keys_event);
} keys_scratch SEC(".maps");

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

/* Reads the session secrets of `ssl` and emits them once per (SSL*, client random). Returns
 * quietly while the handshake is not finished (version or secrets not set yet). */
static __always_inline void check_keys(void *ctx, __u64 id, __u64 ssl, __s32 fd)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = ssl};
	struct openssl_keys_event *k;
	__u64 *sent, cr_addr, session = 0;
	__u32 zero = 0;
	__s32 version = 0;

	if (layout.boringssl)
		return; /* its secrets come from the derivation probes below */
	if (bpf_probe_read_user(&version, sizeof(version), (void *)(ssl + layout.ssl_version)))
		return;
	if (version < 0x0300 || version > 0x0304)
		return;
	k = bpf_map_lookup_elem(&keys_scratch, &zero);
	if (!k)
		return;
	cr_addr = ssl + layout.s3_client_random;
	if (layout.ssl_s3) {
		__u64 s3 = 0;

		if (bpf_probe_read_user(&s3, sizeof(s3), (void *)(ssl + layout.ssl_s3)) || !s3)
			return;
		cr_addr = s3 + layout.s3_client_random;
	}
	if (bpf_probe_read_user(k->client_random, sizeof(k->client_random), (void *)cr_addr))
		return;
	if (all_zero8(k->client_random))
		return;
	sent = bpf_map_lookup_elem(&keys_sent, &key);
	if (sent && *sent == *(__u64 *)k->client_random)
		return;

	__builtin_memset(k->master_key, 0, sizeof(k->master_key));
	__builtin_memset(k->handshake_secret, 0, OPENSSL_SECRET_MAX * 5);
	if (version == 0x0304) {
		__u64 base = ssl + layout.ssl_early_secret;

		if (!layout.ssl_early_secret)
			return;
		/* early, handshake, master, resumption, client/server finished, server finished hash,
		 * handshake traffic hash, client/server app traffic, exporter: 64 bytes each. */
		if (bpf_probe_read_user(k->client_app_traffic_secret, OPENSSL_SECRET_MAX,
					(void *)(base + 8 * OPENSSL_SECRET_MAX)))
			return;
		if (all_zero8(k->client_app_traffic_secret))
			return; /* handshake not finished */
		bpf_probe_read_user(k->handshake_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 1 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->handshake_traffic_hash, OPENSSL_SECRET_MAX,
				    (void *)(base + 7 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->server_app_traffic_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 9 * OPENSSL_SECRET_MAX));
		bpf_probe_read_user(k->exporter_master_secret, OPENSSL_SECRET_MAX,
				    (void *)(base + 10 * OPENSSL_SECRET_MAX));
	} else {
		if (bpf_probe_read_user(&session, sizeof(session), (void *)(ssl + layout.ssl_session)) ||
		    !session)
			return;
		if (bpf_probe_read_user(k->master_key, sizeof(k->master_key),
					(void *)(session + layout.session_master_key)))
			return;
		if (all_zero8(k->master_key))
			return;
	}
	k->kind = OPENSSL_RECORD_KEYS;
	k->version = version;
	k->timestamp_ns = bpf_ktime_get_ns();
	k->conn_id = ssl;
	k->pid = id >> 32;
	k->tid = (__u32)id;
	k->uid = (__u32)bpf_get_current_uid_gid();
	if (fd < 0) {
		__s32 *cached = bpf_map_lookup_elem(&tls_conn_fds, &key);

		if (cached)
			fd = *cached;
	}
	k->fd = fd;
	bpf_get_current_comm(k->comm, sizeof(k->comm));
	__builtin_memset(&k->tuple, 0, sizeof(k->tuple));
	ecap_fill_tuple(fd, &k->tuple);
	ecap_output(ctx, k, sizeof(*k));
	bpf_map_update_elem(&keys_sent, &key, k->client_random, BPF_ANY);
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct bssl_hkdf_call);
} bssl_hkdf_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct openssl_secret_event);
} secret_scratch SEC(".maps");

/* The SSL object (and its fd when known) of the SSL call this thread is inside, if any. */
static __always_inline bool current_ssl(__u64 id, __u64 *ssl, __s32 *fd)
{
	struct tls_call *st = bpf_map_lookup_elem(&tls_active_calls, &id);

	if (!st || st->phase != TLS_PHASE_IN_CALL)
		return false;
	*ssl = st->conn;
	*fd = st->fd;
	if (*fd < 0) {
		struct tls_conn_key key = {.tgid = id >> 32, .conn = st->conn};
		__s32 *cached = bpf_map_lookup_elem(&tls_conn_fds, &key);

		if (cached)
			*fd = *cached;
	}
	return true;
}

/* Fills everything but the client random, label and secret. */
static __always_inline struct openssl_secret_event *secret_record(__u64 id, __u64 ssl, __s32 fd)
{
	__u32 zero = 0;
	struct openssl_secret_event *e = bpf_map_lookup_elem(&secret_scratch, &zero);

	if (!e)
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = OPENSSL_RECORD_SECRET;
	e->fd = fd;
	e->timestamp_ns = bpf_ktime_get_ns();
	e->conn_id = ssl;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
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
	bpf_map_update_elem(&bssl_hkdf_calls, &id, &call, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int probe_bssl_hkdf_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct bssl_hkdf_call *call = bpf_map_lookup_elem(&bssl_hkdf_calls, &id);
	struct openssl_secret_event *e;
	__u64 s3 = 0;
	__u32 n;

	if (!call)
		return 0;
	if ((int)PT_REGS_RC(ctx) != 1)
		goto out;
	e = secret_record(id, call->ssl, call->fd);
	if (!e)
		goto out;
	n = call->out_len;
	if (n > OPENSSL_SECRET_MAX)
		goto out;
	if (bpf_probe_read_user(e->secret, n, (const void *)call->out))
		goto out;
	/* Pointers are untagged first: arm64 top-byte tags (MTE) are not part of the address. */
	if (bpf_probe_read_user(&s3, sizeof(s3),
				(void *)((call->ssl & 0x00ffffffffffffffULL) + layout.ssl_s3)) ||
	    !(s3 &= 0x00ffffffffffffffULL) ||
	    bpf_probe_read_user(e->client_random, sizeof(e->client_random),
				(void *)(s3 + layout.s3_client_random))) {
		ecap_count(ECAP_CNT_READ_FAILED);
		goto out;
	}
	e->secret_len = n;
	e->label_len = call->label_len;
	__builtin_memcpy(e->label, call->label, sizeof(e->label));
	ecap_output(ctx, e, sizeof(*e));
out:
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
	__u64 ssl = 0, sp = PT_REGS_SP(ctx), label_len = 0, seed2 = 0;
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
	e = secret_record(id, ssl, fd);
	if (!e)
		return 0;
	if (bpf_probe_read_user(e->secret, 48, (const void *)PT_REGS_PARM4(ctx)) ||
	    bpf_probe_read_user(e->client_random, sizeof(e->client_random), (const void *)seed2)) {
		ecap_count(ECAP_CNT_READ_FAILED);
		return 0;
	}
	/* Called once per direction's keys: report the session once. */
	key.tgid = id >> 32;
	key.conn = ssl;
	sent = bpf_map_lookup_elem(&keys_sent, &key);
	if (sent && *sent == *(__u64 *)e->client_random)
		return 0;
	e->secret_len = 48;
	e->label_len = sizeof(label);
	__builtin_memcpy(e->label, label, sizeof(label));
	ecap_output(ctx, e, sizeof(*e));
	bpf_map_update_elem(&keys_sent, &key, e->client_random, BPF_ANY);
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

	if (!tls_take_call(ctx, id, &st))
		return 0;
	if (st.api == TLS_API_HANDSHAKE) {
		struct tls_conn_key key = {.tgid = id >> 32, .conn = st.conn};

		if (st.fd >= 0)
			bpf_map_update_elem(&tls_conn_fds, &key, &st.fd, BPF_ANY);
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
 * cookie says which function (enum openssl_api). Two programs mean two links to detach. */
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

/* A syscall on an fd while this thread is inside a hooked SSL call: that fd is the call's socket.
 * One raw tracepoint (one link) instead of eight syscall tracepoints: every detach costs an RCU
 * grace period, and the id test below is cheaper than the lookup it guards. */
SEC("raw_tracepoint/sys_enter")
int tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return tls_sys_enter(ctx);
}
