/* The library-agnostic TLS plaintext data path: an entry uprobe saves (connection object, buffer)
 * per thread, a syscall made during the call on a socket gives the call's fd, and the return
 * probe emits exactly the bytes the call moved, in chunks (struct tls_data_event records),
 * with the process and the connection's 4-tuple. Calls that touch no socket take the fd last
 * seen for their connection object; when there is none, the thread's next socket syscall
 * resolves it late (a TLS_RECORD_CONN record).
 *
 * Include after common.bpf.h; the includer defines its probes
 * with tls_enter()/tls_exit() and a raw_tracepoint/sys_enter program calling tls_sys_enter(). */
#ifndef ECAP_TLS_DATA_BPF_H
#define ECAP_TLS_DATA_BPF_H

#include "tls_emit.bpf.h"

enum tls_call_phase {
	TLS_PHASE_IN_CALL = 0, /* inside the library call: a socket syscall gives its fd */
	TLS_PHASE_AWAITING_FD =
	    1, /* ended without one: the thread's next socket syscall is taken */
};

/* Per thread: the call in flight, or the connection object still waiting for its fd. */
struct tls_call {
	__u64 conn;
	__u64 buf;
	__u64 len_ptr; /* size_t* of calls reporting the length through a pointer, else 0 */
	__s32 fd;      /* learned from a socket syscall made during the call, -1 until then */
	__u8 direction;
	__u8 api;
	__u8 phase; /* enum tls_call_phase */
	__u8 late;  /* the connection was awaiting its fd: report it once learned */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_active_calls SEC(".maps");

struct tls_conn_key {
	__u32 tgid;
	__u32 pad;
	__u64 conn;
};

/* Last fd seen for a connection object: reads served from the library's buffer make no syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, __s32);
} tls_conn_fds SEC(".maps");

static __always_inline int tls_enter_ex(__u64 id, __u64 conn, __u64 buf, __u64 len_ptr,
					__u8 direction, __u8 api)
{
	struct tls_call st = {}, *prev = bpf_map_lookup_elem(&tls_active_calls, &id);

	/* A new call on a connection still awaiting its fd keeps waiting for it (a failed read
	 * must not lose that), and reports it if this call shows the socket. */
	if (prev && prev->phase == TLS_PHASE_AWAITING_FD && prev->conn == conn)
		st.late = 1;
	st.conn = conn;
	st.buf = buf;
	st.len_ptr = len_ptr;
	st.fd = -1;
	st.direction = direction;
	st.api = api;
	bpf_map_update_elem(&tls_active_calls, &id, &st, BPF_ANY);
	return 0;
}

static __always_inline int tls_enter(__u64 id, __u64 conn, __u64 buf, __u8 direction, __u8 api)
{
	return tls_enter_ex(id, conn, buf, 0, direction, api);
}

/* Tells user space the fd (and tuple) of a connection whose data went out with fd -1. */
static __always_inline void tls_resolve_late_fd(void *ctx, __u64 id, __u64 conn, __s32 fd)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = conn};
	struct tls_scratch_rec *s;
	__u32 zero = 0;

	bpf_map_update_elem(&tls_conn_fds, &key, &fd, BPF_ANY);
	s = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!s)
		return;
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));
	s->hdr.timestamp_ns = bpf_ktime_get_ns();
	s->hdr.conn_id = conn;
	s->hdr.pid = id >> 32;
	s->hdr.tid = (__u32)id;
	s->hdr.uid = (__u32)bpf_get_current_uid_gid();
	s->hdr.fd = fd;
	s->hdr.kind = TLS_RECORD_CONN;
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));
	ecap_fill_tuple(fd, &s->hdr.tuple);
	ecap_output(ctx, &s->hdr, sizeof(s->hdr));
}

/* Removes the thread's call in flight into *st; false when there is none (or only a connection
 * waiting for its fd). A connection that was waiting for its fd is resolved or keeps waiting. */
static __always_inline bool tls_take_call(void *ctx, __u64 id, struct tls_call *st)
{
	struct tls_call *stp = bpf_map_lookup_elem(&tls_active_calls, &id);

	if (!stp)
		return false;
	*st = *stp;
	bpf_map_delete_elem(&tls_active_calls, &id);
	if (st->phase != TLS_PHASE_IN_CALL)
		return false;
	/* Even a call that moved nothing (WANT_READ) may have shown a waiting connection's socket. */
	if (st->late && st->fd >= 0) {
		tls_resolve_late_fd(ctx, id, st->conn, st->fd);
	} else if (st->late) {
		struct tls_call wait = *st;

		wait.phase = TLS_PHASE_AWAITING_FD; /* still unknown: keep waiting for a syscall */
		bpf_map_update_elem(&tls_active_calls, &id, &wait, BPF_ANY);
	}
	st->late = 0;
	return true;
}

/* Emits the `len` bytes the call `st` moved (len > 0), resolving its fd through the connection's
 * last fd, or later through the thread's next socket syscall. */
static __always_inline int tls_emit_data(void *ctx, __u64 id, struct tls_call *stp, __u64 len)
{
	struct tls_conn_key key = {};
	struct tls_call st = *stp;
	__s32 *cached;

	key.tgid = id >> 32;
	key.conn = st.conn;
	cached = bpf_map_lookup_elem(&tls_conn_fds, &key);
	if (st.fd >= 0) {
		if (!cached || *cached != st.fd)
			bpf_map_update_elem(&tls_conn_fds, &key, &st.fd, BPF_ANY);
	} else if (cached) {
		st.fd = *cached;
	} else {
		st.phase = TLS_PHASE_AWAITING_FD;
		bpf_map_update_elem(&tls_active_calls, &id, &st, BPF_ANY);
	}

	tls_emit_record(ctx, id, st.conn, st.fd, st.buf, len, st.direction, st.api);
	return 0;
}

/* The return of a hooked call that moved `ret` bytes (<= 0: nothing). */
static __always_inline int tls_exit(void *ctx, __s64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call st;

	if (!tls_take_call(ctx, id, &st) || ret <= 0)
		return 0;
	return tls_emit_data(ctx, id, &st, (__u64)ret);
}

/* Body of the includer's raw_tracepoint/sys_enter program: a syscall on a socket while this
 * thread is inside a hooked call gives the call's fd (eventfds, pipes and files are skipped). */
static __always_inline int tls_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long nr = (long)ctx->args[1];
	struct pt_regs *regs;
	struct tls_call *st;
	__s32 fd;
	__u64 id;

	if (!ecap_is_fd_io_syscall(nr))
		return 0;
	id = bpf_get_current_pid_tgid();
	st = bpf_map_lookup_elem(&tls_active_calls, &id);
	if (!st)
		return 0;
	regs = (struct pt_regs *)ctx->args[0];
	fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	if (!ecap_fd_to_sock(fd))
		return 0;
	if (st->phase == TLS_PHASE_IN_CALL) {
		st->fd = fd;
		return 0;
	}
	tls_resolve_late_fd(ctx, id, st->conn, fd);
	bpf_map_delete_elem(&tls_active_calls, &id);
	return 0;
}

#endif /* ECAP_TLS_DATA_BPF_H */
