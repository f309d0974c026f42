/* The library-agnostic TLS plaintext data path: an entry uprobe saves (connection object, buffer)
 * per thread, a syscall made during the call on a socket gives the call's fd, and the return
 * probe emits exactly the bytes the call moved, in chunks (struct openssl_data_event records),
 * with the process and the connection's 4-tuple. Calls that touch no socket take the fd last
 * seen for their connection object; when there is none, the thread's next socket syscall
 * resolves it late (an OPENSSL_RECORD_CONN record).
 *
 * Include after common.bpf.h and modules/openssl/openssl_abi.h; the includer defines its probes
 * with tls_enter()/tls_exit() and a raw_tracepoint/sys_enter program calling tls_sys_enter(). */
#ifndef ECAP_TLS_DATA_BPF_H
#define ECAP_TLS_DATA_BPF_H

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

struct tls_scratch_rec {
	struct openssl_data_event hdr;
	__u8 data[OPENSSL_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_scratch_rec);
} tls_scratch SEC(".maps");

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

struct tls_emit_ctx {
	void *regs;
	__u64 buf;
	__u64 len;
};

static long tls_emit_chunk(__u32 index, void *arg)
{
	struct tls_emit_ctx *c = arg;
	__u32 zero = 0;
	struct tls_scratch_rec *s = bpf_map_lookup_elem(&tls_scratch, &zero);
	__u64 off = (__u64)index * OPENSSL_CHUNK;
	__u64 n;

	if (!s || off >= c->len)
		return 1;
	n = c->len - off;
	if (n > OPENSSL_CHUNK)
		n = OPENSSL_CHUNK;
	s->hdr.offset = off;
	s->hdr.data_len = n;
	if (bpf_probe_read_user(s->data, n, (const void *)(c->buf + off))) {
		ecap_count(ECAP_CNT_READ_FAILED);
		return 0;
	}
	ecap_output(c->regs, s, sizeof(s->hdr) + n);
	return 0;
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
	s->hdr.kind = OPENSSL_RECORD_CONN;
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
	struct tls_scratch_rec *s;
	struct tls_emit_ctx ec;
	struct tls_call st = *stp;
	__u32 zero = 0;
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

	s = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));
	s->hdr.timestamp_ns = bpf_ktime_get_ns();
	s->hdr.conn_id = st.conn;
	s->hdr.total_len = len;
	s->hdr.pid = id >> 32;
	s->hdr.tid = (__u32)id;
	s->hdr.uid = (__u32)bpf_get_current_uid_gid();
	s->hdr.fd = st.fd;
	s->hdr.direction = st.direction;
	s->hdr.api = st.api;
	s->hdr.kind = OPENSSL_RECORD_DATA;
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));
	ecap_fill_tuple(st.fd, &s->hdr.tuple);

	ec.regs = ctx;
	ec.buf = st.buf;
	ec.len = len;
	bpf_loop((len + OPENSSL_CHUNK - 1) / OPENSSL_CHUNK, tls_emit_chunk, &ec, 0);
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
