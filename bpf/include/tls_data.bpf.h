/* The library-agnostic TLS plaintext data path. Reads: an entry uprobe saves (connection object,
 * buffer) per thread and the return probe emits exactly the bytes the call moved. Writes that
 * tls_write_at_entry() serves are emitted at the entry, with no return probe (one trap per call).
 * A connection's fd is kept per connection object once known; only while it is unknown do the
 * per-syscall tracepoints (sys_enter_{read,write,...}) look at the thread, and a global count of
 * such threads lets them return at once otherwise. Data that went out with fd -1 is followed by a
 * TLS_RECORD_CONN record once the thread's next socket syscall shows the fd (memory-BIO libraries
 * like node's touch the socket only after the library call).
 *
 * Include after common.bpf.h; the includer defines its probes with tls_enter()/tls_exit() and
 * instantiates TLS_DEFINE_FD_LEARNERS() and TLS_DEFINE_EXIT_CLEANUP(). */
#ifndef ECAP_TLS_DATA_BPF_H
#define ECAP_TLS_DATA_BPF_H

#include "tls_emit.bpf.h"

enum tls_call_phase {
	TLS_PHASE_IN_CALL = 0,     /* inside the library call: a socket syscall gives its fd */
	TLS_PHASE_AWAITING_FD = 1, /* ended without one: the thread's next socket syscall is taken */
};

/* Per thread: the call in flight, or the connection object still waiting for its fd. A hash map
 * (a full one fails updates, which are counted) emptied by the calls' returns and, for a thread
 * that dies inside a call, by the sched_process_exit cleanup. */
struct tls_call {
	__u64 conn;
	__u64 buf;
	__u64 len_ptr; /* size_t* of calls reporting the length through a pointer, else 0 */
	__s32 fd;      /* known at entry or learned from a socket syscall, -1 until then */
	__u8 direction;
	__u8 api;
	__u8 phase;     /* enum tls_call_phase */
	__u8 late : 1;  /* the connection was awaiting its fd: report it once learned */
	__u8 waits : 1; /* counted in tls_fd_waiters (the fd is still wanted) */
};

/* Size set by user space (ECAPTURE_TEST_SMALL_MAPS shrinks it to show counted failures). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_active_calls SEC(".maps");

/* Entries of tls_active_calls that still want an fd: the syscall tracepoints' fast exit. */
__u64 tls_fd_waiters = 0;

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

/* The fd last seen for `conn` of the current process, or -1. */
static __always_inline __s32 tls_cached_fd(__u64 id, __u64 conn)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = conn};
	__s32 *fd = bpf_map_lookup_elem(&tls_conn_fds, &key);

	return fd ? *fd : -1;
}

static __always_inline void tls_remember_fd(__u64 id, __u64 conn, __s32 fd)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = conn};
	__s32 *cached = bpf_map_lookup_elem(&tls_conn_fds, &key);

	if (fd >= 0 && (!cached || *cached != fd))
		ecap_map_update(&tls_conn_fds, &key, &fd, BPF_ANY);
}

static __always_inline void tls_waiter_add(struct tls_call *st)
{
	st->waits = 1;
	__sync_fetch_and_add(&tls_fd_waiters, 1);
}

static __always_inline void tls_waiter_done(struct tls_call *st)
{
	if (st->waits) {
		st->waits = 0;
		__sync_fetch_and_add(&tls_fd_waiters, -1);
	}
}

/* Stores the thread's entry; `st->waits` is counted only once the entry is in the map. */
static __always_inline void tls_put_call(__u64 id, struct tls_call *st, bool want_fd)
{
	struct tls_call *old = bpf_map_lookup_elem(&tls_active_calls, &id);

	if (old)
		tls_waiter_done(old); /* replaced below: its count goes with it */
	st->waits = 0;
	if (ecap_map_update(&tls_active_calls, &id, st, BPF_ANY))
		return;
	if (want_fd) {
		struct tls_call *in = bpf_map_lookup_elem(&tls_active_calls, &id);

		if (in)
			tls_waiter_add(in);
	}
}

/* Removes the thread's entry (its waiter count with it); false when there was none. */
static __always_inline bool tls_drop_call(__u64 id, struct tls_call *out)
{
	struct tls_call *stp = bpf_map_lookup_elem(&tls_active_calls, &id);

	if (!stp)
		return false;
	if (out)
		*out = *stp;
	tls_waiter_done(stp);
	bpf_map_delete_elem(&tls_active_calls, &id);
	return true;
}

static __always_inline int tls_enter_ex(__u64 id, __u64 conn, __u64 buf, __u64 len_ptr,
					__u8 direction, __u8 api)
{
	struct tls_call st = {}, prev;
	bool had = tls_drop_call(id, &prev);

	/* A new call on a connection still awaiting its fd keeps waiting for it (a failed read
	 * must not lose that), and reports it if this call shows the socket. */
	if (had && prev.phase == TLS_PHASE_AWAITING_FD && prev.conn == conn)
		st.late = 1;
	st.conn = conn;
	st.buf = buf;
	st.len_ptr = len_ptr;
	st.fd = st.late ? -1 : tls_cached_fd(id, conn);
	st.direction = direction;
	st.api = api;
	tls_put_call(id, &st, st.fd < 0);
	return 0;
}

static __always_inline int tls_enter(__u64 id, __u64 conn, __u64 buf, __u8 direction, __u8 api)
{
	return tls_enter_ex(id, conn, buf, 0, direction, api);
}

/* Tells user space the fd (and tuple) of a connection whose data went out with fd -1. */
static __always_inline void tls_resolve_late_fd(void *ctx, __u64 id, __u64 conn, __s32 fd)
{
	struct tls_data_event h;

	tls_remember_fd(id, conn, fd);
	tls_fill_header(&h, id, conn, fd, TLS_RECORD_CONN);
	ecap_output(ctx, &h, sizeof(h));
}

/* Makes the thread wait for `conn`'s fd: its next socket syscall resolves it. */
static __always_inline void tls_await_fd(__u64 id, struct tls_call *st)
{
	struct tls_call wait = *st;

	wait.phase = TLS_PHASE_AWAITING_FD;
	wait.fd = -1;
	tls_put_call(id, &wait, true);
}

/* Removes the thread's call in flight into *st; false when there is none (or only a connection
 * waiting for its fd). A connection that was waiting for its fd is resolved or keeps waiting. */
static __always_inline bool tls_take_call(void *ctx, __u64 id, struct tls_call *st)
{
	if (!tls_drop_call(id, st))
		return false;
	if (st->phase != TLS_PHASE_IN_CALL)
		return false;
	/* Even a call that moved nothing (WANT_READ) may have shown a waiting connection's socket. */
	if (st->late && st->fd >= 0)
		tls_resolve_late_fd(ctx, id, st->conn, st->fd);
	else if (st->late)
		tls_await_fd(id, st); /* still unknown: keep waiting for a syscall */
	st->late = 0;
	return true;
}

/* Emits the `len` bytes the call `st` moved (len > 0), resolving its fd through the connection's
 * last fd, or later through the thread's next socket syscall. */
static __always_inline int tls_emit_data(void *ctx, __u64 id, struct tls_call *stp, __u64 len)
{
	struct tls_call st = *stp;

	if (st.fd >= 0)
		tls_remember_fd(id, st.conn, st.fd);
	else
		st.fd = tls_cached_fd(id, st.conn);
	if (st.fd < 0)
		tls_await_fd(id, &st);
	tls_emit_record(ctx, id, st.conn, st.fd, st.buf, len, st.direction, st.api);
	return 0;
}

/* The return of a hooked call that moved `ret` bytes (<= 0: nothing). */
static __always_inline int tls_exit(void *ctx, __s64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call st;

	if (ecap_filtered_out(id) || !tls_take_call(ctx, id, &st))
		return 0;
	tls_remember_fd(id, st.conn, st.fd); /* a failed call's socket is its retry's */
	if (ret <= 0)
		return 0;
	return tls_emit_data(ctx, id, &st, (__u64)ret);
}

/* ---- writes at entry ---- */

/* The write last emitted at entry on a connection: [start, end) of the caller's buffer, the
 * thread, and the progress counters when it was emitted: the TCP socket's write_seq (bytes the
 * application queued on it, whatever the syscall), else the thread's io accounting (bytes and
 * calls of write(2)-family syscalls). */
struct tls_write_mark {
	__u64 start;
	__u64 end;
	__u64 wchar;
	__u64 syscw;
	__u32 tid;
	__u32 seq;
	__u8 has_seq;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, struct tls_write_mark);
} tls_write_marks SEC(".maps");

#define ECAP_IPPROTO_TCP 6

/* Fills the progress counters of `m` for socket `fd` and the current thread. */
static __always_inline void tls_progress(struct tls_write_mark *m, __s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock *sk = ecap_fd_to_sock(fd);

	m->has_seq = 0;
	if (sk && BPF_CORE_READ(sk, sk_protocol) == ECAP_IPPROTO_TCP) {
		m->seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
		m->has_seq = 1;
	}
	m->wchar = 0;
	m->syscw = 0;
	if (bpf_core_field_exists(task->ioac.wchar)) {
		m->wchar = BPF_CORE_READ(task, ioac.wchar);
		m->syscw = BPF_CORE_READ(task, ioac.syscw);
	}
}

/* A TLS record adds at least this much to its plaintext (5-byte header, 16-byte AEAD tag). */
#define TLS_MIN_RECORD_OVERHEAD 21
#define TLS_MAX_RECORD_PLAINTEXT 16384

/* True when the write [buf, buf + len) was already emitted: OpenSSL wants a write that failed
 * with SSL_ERROR_WANT_WRITE retried with the same arguments, and after a partial write
 * (SSL_MODE_ENABLE_PARTIAL_WRITE) the caller goes on with the rest of the same buffer. Either
 * way the range ends where the last emitted one did, on the same thread, and since that entry
 * fewer bytes went to the socket than the emitted plaintext makes as TLS records (so that write
 * did not complete). Without a counter that shows it (not TCP, and no write(2) by the thread
 * since) the call is emitted: a retry may then show twice, a new write is never lost. */
static __always_inline bool tls_write_seen(struct tls_write_mark *m, __u64 buf, __u64 len,
					   __u32 tid, struct tls_write_mark *now)
{
	__u64 emitted, records, progress;

	if (!m || m->tid != tid || buf + len != m->end || buf < m->start)
		return false;
	if (m->has_seq && now->has_seq)
		progress = (__u32)(now->seq - m->seq);
	else if (now->syscw != m->syscw)
		progress = now->wchar - m->wchar;
	else
		return false;
	emitted = m->end - m->start;
	records = (emitted + TLS_MAX_RECORD_PLAINTEXT - 1) / TLS_MAX_RECORD_PLAINTEXT;
	return progress < emitted + records * TLS_MIN_RECORD_OVERHEAD;
}

/* The entry of a write of `len` bytes at `buf` on `conn`, whose fd is `fd` (known: the caller
 * asks for no return probe): emits them now, unless they were emitted by the call this one
 * retries or continues. */
static __always_inline int tls_write_at_entry(void *ctx, __u64 id, __u64 conn, __s32 fd,
					      __u64 buf, __u64 len, __u8 api)
{
	struct tls_conn_key key = {.tgid = id >> 32, .conn = conn};
	struct tls_write_mark *m, now = {};

	if (len == 0 || len > (1ull << 31))
		return 0;
	tls_progress(&now, fd);
	m = bpf_map_lookup_elem(&tls_write_marks, &key);
	if (tls_write_seen(m, buf, len, (__u32)id, &now)) {
		*m = now;
		m->start = buf;
		m->end = buf + len;
		m->tid = (__u32)id;
		return 0;
	}
	now.start = buf;
	now.end = buf + len;
	now.tid = (__u32)id;
	ecap_map_update(&tls_write_marks, &key, &now, BPF_ANY);
	tls_emit_record(ctx, id, conn, fd, buf, len, ECAP_DIR_WRITE, api);
	return 0;
}

/* ---- fd learning and cleanup ---- */

/* A syscall on fd `fd`: when this thread is inside a hooked call (or waits for a connection's
 * fd) and `fd` is a socket, that is the connection's fd. Returns at once while no thread of the
 * capture wants an fd. */
static __always_inline int tls_sys_fd(void *ctx, __s32 fd)
{
	struct tls_call *st;
	__u64 id;

	if (!tls_fd_waiters)
		return 0;
	id = bpf_get_current_pid_tgid();
	if (ecap_filtered_out(id))
		return 0;
	st = bpf_map_lookup_elem(&tls_active_calls, &id);
	if (!st || !st->waits || !ecap_fd_to_sock(fd))
		return 0;
	if (st->phase == TLS_PHASE_IN_CALL) {
		st->fd = fd;
		tls_waiter_done(st);
		return 0;
	}
	tls_resolve_late_fd(ctx, id, st->conn, fd);
	tls_drop_call(id, NULL);
	return 0;
}

/* The syscalls that move a socket's bytes, whose first argument is the fd: one tracepoint each,
 * so that no program runs on any other syscall of the host. User space does not load them in
 * keylog mode. */
#define TLS_FD_LEARNER(name)                                                                     \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                              \
	int tp_tls_##name(struct trace_event_raw_sys_enter *ctx)                                 \
	{                                                                                        \
		return tls_sys_fd(ctx, (__s32)ctx->args[0]);                                     \
	}

#define TLS_DEFINE_FD_LEARNERS()                                                                 \
	TLS_FD_LEARNER(read)                                                                     \
	TLS_FD_LEARNER(write)                                                                    \
	TLS_FD_LEARNER(readv)                                                                    \
	TLS_FD_LEARNER(writev)                                                                   \
	TLS_FD_LEARNER(sendto)                                                                   \
	TLS_FD_LEARNER(recvfrom)                                                                 \
	TLS_FD_LEARNER(sendmsg)                                                                  \
	TLS_FD_LEARNER(recvmsg)

/* A thread that ends inside a hooked call (killed, cancelled in SSL_read) leaves no entry. */
#define TLS_DEFINE_EXIT_CLEANUP()                                                                \
	SEC("tracepoint/sched/sched_process_exit")                                               \
	int tp_tls_thread_exit(void *ctx)                                                        \
	{                                                                                        \
		__u64 id = bpf_get_current_pid_tgid();                                           \
                                                                                                 \
		if (!ecap_filtered_out(id))                                                      \
			tls_drop_call(id, NULL);                                                 \
		return 0;                                                                        \
	}

#endif /* ECAP_TLS_DATA_BPF_H */
