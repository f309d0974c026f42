// SPDX-License-Identifier: GPL-2.0
/* GnuTLS and NSS/NSPR plaintext capture through the shared TLS data path (tls_data.bpf.h).
 * GnuTLS: gnutls_record_send/gnutls_record_recv(session, buf, len) -> ssize_t.
 * NSPR: PR_Write/PR_Send/PR_Read/PR_Recv(PRFileDesc *fd, buf, amount, ...) -> PRInt32, kept only
 * when the descriptor is a layered one (NSS's SSL layer sets PR_DESC_LAYERED in its methods):
 * stdout, files, pipes and plain sockets carry other descriptor types and are dropped at the
 * entry, before anything is saved or copied. The socket under the layers gives the fd at once
 * where NSPR's private layout is the expected one. */
#include "common.bpf.h"
#include "tls_data.bpf.h"
#include "modules/tlslib/tlslib_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define NSPR_PR_DESC_LAYERED 4 /* PRDescType of a layered descriptor (NSS SSL layer) */

/* NSPR's PRFileDesc {methods, secret, lower, higher, ...}; the bottom layer's PRFilePrivate
 * {state, nonblocking, inheritable, next, lockCount, [peek buffer,] appendMode, _MDFileDesc md
 * {osfd, ...}} (64-bit): md.osfd is at 32, or at 52 in builds with a peek buffer. */
#define NSPR_FD_SECRET 8
#define NSPR_FD_LOWER 16
#define NSPR_SECRET_OSFD 32
#define NSPR_SECRET_OSFD_PEEK 52
#define NSPR_MAX_LAYERS 8

/* The attach cookie of every probe: TLS_API_READ or TLS_API_WRITE. */
static __always_inline __u8 cookie_direction(__u8 api)
{
	return api == TLS_API_WRITE ? ECAP_DIR_WRITE : ECAP_DIR_READ;
}

/* The socket fd under the layered NSPR descriptor `fd`: >= 0 a socket, -2 found and not a
 * socket, -1 not found (an unknown layout: the fd is then learned from the call's syscalls). */
static __always_inline __s32 nspr_socket_fd(__u64 fd)
{
	__u64 lower = 0, secret = 0;
	__s32 osfd = -1, alt = -1;

	for (int i = 0; i < NSPR_MAX_LAYERS; i++) {
		if (bpf_probe_read_user(&lower, sizeof(lower), (void *)(fd + NSPR_FD_LOWER)))
			return -1;
		if (!lower)
			break;
		fd = lower;
	}
	if (lower)
		return -1;
	if (bpf_probe_read_user(&secret, sizeof(secret), (void *)(fd + NSPR_FD_SECRET)) || !secret)
		return -1;
	bpf_probe_read_user(&osfd, sizeof(osfd), (void *)(secret + NSPR_SECRET_OSFD));
	bpf_probe_read_user(&alt, sizeof(alt), (void *)(secret + NSPR_SECRET_OSFD_PEEK));
	if (ecap_fd_to_sock(osfd))
		return osfd;
	if (ecap_fd_to_sock(alt))
		return alt;
	return -1;
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
	__s32 file_type = 0, osfd;

	if (ecap_filtered_out(id))
		return 0;
	/* struct PRFileDesc { const PRIOMethods *methods; ... };
	 * struct PRIOMethods { PRDescType file_type; ... }; */
	if (!fd || bpf_probe_read_user(&methods, sizeof(methods), (void *)fd) || !methods)
		return 0;
	if (bpf_probe_read_user(&file_type, sizeof(file_type), (void *)methods) ||
	    file_type != NSPR_PR_DESC_LAYERED)
		return 0;
	/* The socket under the layers gives the fd at once; when it cannot be found it is learned
	 * from the call's syscalls, as for GnuTLS. */
	osfd = nspr_socket_fd(fd);
	tls_remember_fd(id, fd, osfd);
	return tls_enter(id, fd, PT_REGS_PARM2(ctx), cookie_direction(api), api);
}

SEC("uretprobe")
int probe_nspr_exit(struct pt_regs *ctx)
{
	return tls_exit(ctx, (__s32)PT_REGS_RC(ctx)); /* PRInt32 */
}

/* Keys: gnutls_handshake(session) returning 0 means the session's secrets are final. Where
 * GnuTLS keeps them depends on its version: the layout of each hooked library is kept under its
 * slot, bits 8-15 of the attach cookie (0 with one target). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GNUTLS_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct gnutls_layout);
} gnutls_layouts SEC(".maps");

/* Perf-buffer kernels only: records are reserved in the ring buffer otherwise. */
ECAP_SCRATCH_MAP(gnutls_keys_scratch, struct gnutls_keys_event);

SEC("uprobe")
int probe_gnutls_hs_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ecap_filtered_out(id))
		return 0;
	return tls_enter(id, PT_REGS_PARM1(ctx), 0, ECAP_DIR_READ, TLS_API_HANDSHAKE);
}

/* Reads the session's secrets into `k`; false when a read fails. */
static __always_inline bool fill_gnutls_keys(struct gnutls_keys_event *k, __u64 session,
					     const struct gnutls_layout *l)
{
	__u64 cs = 0, prf = 0;

	__builtin_memset(k, 0, sizeof(*k));
	if (bpf_probe_read_user(&cs, sizeof(cs), (void *)(session + l->cs)) || !cs ||
	    bpf_probe_read_user(k->cs_id, sizeof(k->cs_id), (void *)(cs + l->cs_id)))
		return false;
	if (bpf_probe_read_user(&prf, sizeof(prf), (void *)(session + l->prf)) || !prf ||
	    bpf_probe_read_user(&k->hash_len, sizeof(k->hash_len),
				(void *)(prf + l->prf_output_size)))
		return false;
	if (bpf_probe_read_user(k->client_random, sizeof(k->client_random),
				(void *)(session + l->client_random)) ||
	    bpf_probe_read_user(k->master_secret, sizeof(k->master_secret),
				(void *)(session + l->master_secret)) ||
	    bpf_probe_read_user(k->tls13, sizeof(k->tls13),
				(void *)(session + l->tls13_secrets)))
		return false;
	return true;
}

SEC("uretprobe")
int probe_gnutls_hs_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 slot = (bpf_get_attach_cookie(ctx) >> 8) & (GNUTLS_MAX_SLOTS - 1);
	const struct gnutls_layout *l;
	struct gnutls_keys_event *k;
	struct tls_call st;
	__s32 fd;

	if (ecap_filtered_out(id) || !tls_drop_call(id, &st))
		return 0;
	fd = st.fd;
	if (fd >= 0)
		tls_remember_fd(id, st.conn, fd);
	else
		fd = tls_cached_fd(id, st.conn);
	l = bpf_map_lookup_elem(&gnutls_layouts, &slot);
	if ((int)PT_REGS_RC(ctx) != 0 || !l)
		return 0;
	k = ecap_reserve(&gnutls_keys_scratch, sizeof(*k));
	if (!k)
		return 0;
	if (!fill_gnutls_keys(k, st.conn, l)) {
		ecap_discard(k);
		return 0;
	}
	k->kind = GNUTLS_RECORD_KEYS;
	k->conn_id = st.conn;
	ECAP_FILL_TASK(k, id);
	k->fd = fd;
	ecap_fill_tuple(fd, &k->tuple);
	ecap_submit(ctx, k, sizeof(*k));
	return 0;
}

TLS_DEFINE_FD_LEARNERS()
TLS_DEFINE_EXIT_CLEANUP()
