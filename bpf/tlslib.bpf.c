// SPDX-License-Identifier: GPL-2.0
/* GnuTLS and NSS/NSPR plaintext capture through the shared TLS data path (tls_data.bpf.h).
 * GnuTLS: gnutls_record_send/gnutls_record_recv(session, buf, len) -> ssize_t.
 * NSPR: PR_Write/PR_Send/PR_Read/PR_Recv(PRFileDesc *fd, buf, amount, ...) -> PRInt32, kept only
 * when the descriptor is a layered one (NSS's SSL layer sets PR_DESC_LAYERED in its methods):
 * stdout, files, pipes and plain sockets carry other descriptor types. */
#include "common.bpf.h"
#include "modules/tlslib/tlslib_abi.h"
#include "tls_data.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define NSPR_PR_DESC_LAYERED 4 /* PRDescType of a layered descriptor (NSS SSL layer) */

/* The attach cookie of every probe: TLS_API_READ or TLS_API_WRITE. */
static __always_inline __u8 cookie_direction(__u8 api)
{
	return api == TLS_API_WRITE ? ECAP_DIR_WRITE : ECAP_DIR_READ;
}

SEC("uprobe")
int probe_gnutls_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 api = (__u8)bpf_get_attach_cookie(ctx);

	if (ecap_filtered_out(id))
		return 0;
	return tls_enter(id, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), cookie_direction(api), api);
}

SEC("uretprobe")
int probe_gnutls_exit(struct pt_regs *ctx)
{
	return tls_exit(ctx, (__s64)PT_REGS_RC(ctx)); /* ssize_t */
}

SEC("uprobe")
int probe_nspr_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 api = (__u8)bpf_get_attach_cookie(ctx);
	__u64 fd = PT_REGS_PARM1(ctx), methods = 0;
	__s32 file_type = 0;

	if (ecap_filtered_out(id))
		return 0;
	/* struct PRFileDesc { const PRIOMethods *methods; ... };
	 * struct PRIOMethods { PRDescType file_type; ... }; */
	if (!fd || bpf_probe_read_user(&methods, sizeof(methods), (void *)fd) || !methods)
		return 0;
	if (bpf_probe_read_user(&file_type, sizeof(file_type), (void *)methods) ||
	    file_type != NSPR_PR_DESC_LAYERED)
		return 0;
	return tls_enter(id, fd, PT_REGS_PARM2(ctx), cookie_direction(api), api);
}

SEC("uretprobe")
int probe_nspr_exit(struct pt_regs *ctx)
{
	return tls_exit(ctx, (__s32)PT_REGS_RC(ctx)); /* PRInt32 */
}

/* Keys: gnutls_handshake(session) returning 0 means the session's secrets are final. */
const volatile struct gnutls_layout glayout = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gnutls_keys_event);
} gnutls_keys_scratch SEC(".maps");

SEC("uprobe")
int probe_gnutls_hs_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ecap_filtered_out(id))
		return 0;
	return tls_enter(id, PT_REGS_PARM1(ctx), 0, ECAP_DIR_READ, TLS_API_HANDSHAKE);
}

SEC("uretprobe")
int probe_gnutls_hs_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *stp = bpf_map_lookup_elem(&tls_active_calls, &id);
	struct tls_conn_key key = {};
	struct gnutls_keys_event *k;
	__u64 session, cs = 0, prf = 0;
	__u32 zero = 0;
	__s32 fd, *cached;

	if (!stp)
		return 0;
	session = stp->conn;
	fd = stp->fd;
	bpf_map_delete_elem(&tls_active_calls, &id);
	key.tgid = id >> 32;
	key.conn = session;
	if (fd >= 0) {
		bpf_map_update_elem(&tls_conn_fds, &key, &fd, BPF_ANY);
	} else {
		cached = bpf_map_lookup_elem(&tls_conn_fds, &key);
		if (cached)
			fd = *cached;
	}
	if ((int)PT_REGS_RC(ctx) != 0)
		return 0;
	k = bpf_map_lookup_elem(&gnutls_keys_scratch, &zero);
	if (!k)
		return 0;
	__builtin_memset(k, 0, sizeof(*k));
	if (bpf_probe_read_user(&cs, sizeof(cs), (void *)(session + glayout.cs)) || !cs ||
	    bpf_probe_read_user(k->cs_id, sizeof(k->cs_id), (void *)(cs + glayout.cs_id)))
		return 0;
	if (bpf_probe_read_user(&prf, sizeof(prf), (void *)(session + glayout.prf)) || !prf ||
	    bpf_probe_read_user(&k->hash_len, sizeof(k->hash_len),
				(void *)(prf + glayout.prf_output_size)))
		return 0;
	if (bpf_probe_read_user(k->client_random, sizeof(k->client_random),
				(void *)(session + glayout.client_random)) ||
	    bpf_probe_read_user(k->master_secret, sizeof(k->master_secret),
				(void *)(session + glayout.master_secret)) ||
	    bpf_probe_read_user(k->tls13, sizeof(k->tls13),
				(void *)(session + glayout.tls13_secrets)))
		return 0;
	k->kind = GNUTLS_RECORD_KEYS;
	k->timestamp_ns = bpf_ktime_get_ns();
	k->conn_id = session;
	k->pid = id >> 32;
	k->tid = (__u32)id;
	k->uid = (__u32)bpf_get_current_uid_gid();
	k->fd = fd;
	bpf_get_current_comm(k->comm, sizeof(k->comm));
	ecap_fill_tuple(fd, &k->tuple);
	ecap_output(ctx, k, sizeof(*k));
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int tp_sys_enter(struct bpf_raw_tracepoint_args *ctx) { return tls_sys_enter(ctx); }
