/* Helpers every module's BPF program shares: filters in rodata, the event output map (ring
 * buffer, or perf buffer on kernels without one), counters, counted map updates, the task header
 * fill, per-CPU scratch declarations, and fd -> socket tuple resolution through the current
 * task's file table (no kprobes). */
#ifndef ECAP_COMMON_BPF_H
#define ECAP_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ecap_abi.h"

#define ECAP_AF_INET 2
#define ECAP_AF_INET6 10
#define ECAP_S_IFMT 00170000
#define ECAP_S_IFSOCK 0140000

/* Set by user space before load; 0 means "no filter". */
const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_uid = 0;
/* false: `events` was turned into a perf event array by user space (old kernels). */
const volatile bool use_ringbuf = true;
/* Wake the reader only once this much data waits in the ring buffer; below it the reader finds
 * the data on its next timed poll. A wakeup per record would cost more than the record. */
const volatile __u64 ringbuf_wakeup_bytes = 1 << 20;

/* Type and size are set by user space before load (ring buffer or perf event array). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ECAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ecap_counters SEC(".maps");

static __always_inline void ecap_count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ecap_counters, &which);
	if (v)
		*v += 1;
}

/* Every map update goes through this: a failure (map full, no memory) loses state that a later
 * probe needed, so it is counted (ECAP_CNT_MAP_FAILED, shown in the exit summary). */
static __always_inline long ecap_map_update(void *map, const void *key, const void *value,
					    __u64 flags)
{
	long err = bpf_map_update_elem(map, key, value, flags);

	if (err)
		ecap_count(ECAP_CNT_MAP_FAILED);
	return err;
}

/* A per-CPU array of one `value_type`, for records too large for the BPF stack. Only for
 * programs that cannot be preempted by another user of the same map on the same CPU
 * (tracepoints, tc); the uprobe paths reserve their records in the ring buffer instead
 * (ecap_reserve), and use these only on perf-buffer kernels. */
#define ECAP_SCRATCH_MAP(name, value_type)                                                       \
	struct {                                                                                 \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                         \
		__uint(max_entries, 1);                                                          \
		__type(key, __u32);                                                              \
		__type(value, value_type);                                                       \
	} name SEC(".maps")

static __always_inline void *ecap_scratch(void *map)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(map, &zero);
}

/* The task part of every record header: when, which process/thread, whose, which command. */
#define ECAP_FILL_TASK(h, id)                                                                    \
	do {                                                                                     \
		(h)->timestamp_ns = bpf_ktime_get_ns();                                          \
		(h)->pid = (id) >> 32;                                                           \
		(h)->tid = (__u32)(id);                                                          \
		(h)->uid = (__u32)bpf_get_current_uid_gid();                                     \
		bpf_get_current_comm((h)->comm, sizeof((h)->comm));                              \
	} while (0)

/* The same for records that carry no thread id. */
#define ECAP_FILL_PROCESS(h, id)                                                                 \
	do {                                                                                     \
		(h)->timestamp_ns = bpf_ktime_get_ns();                                          \
		(h)->pid = (id) >> 32;                                                           \
		(h)->uid = (__u32)bpf_get_current_uid_gid();                                     \
		bpf_get_current_comm((h)->comm, sizeof((h)->comm));                              \
	} while (0)

static __always_inline bool ecap_filtered_out(__u64 pid_tgid)
{
	if (targ_tgid && (__u32)(pid_tgid >> 32) != targ_tgid)
		return true;
	if (targ_uid && (__u32)bpf_get_current_uid_gid() != targ_uid)
		return true;
	return false;
}

static __always_inline __u64 ecap_wakeup_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ringbuf_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* Sends `size` bytes at `data` to user space; counts a loss when the buffer is full. */
static __always_inline void ecap_output(void *ctx, void *data, __u64 size)
{
	long err;

	if (use_ringbuf)
		err = bpf_ringbuf_output(&events, data, size, ecap_wakeup_flags());
	else
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, data, size);
	if (err)
		ecap_count(ECAP_CNT_LOST);
}

/* Memory for a record of `size` bytes (a constant): reserved in the ring buffer itself, so two
 * tasks preempting each other on one CPU never write into the same buffer; with a perf buffer
 * (old kernels) the per-CPU `fallback` map's slot. Every path hands it to ecap_submit or
 * ecap_discard. NULL (counted as lost) when the ring is full. */
static __always_inline void *ecap_reserve(void *fallback, __u64 size)
{
	void *p;

	if (!use_ringbuf)
		return ecap_scratch(fallback);
	p = bpf_ringbuf_reserve(&events, size, 0);
	if (!p)
		ecap_count(ECAP_CNT_LOST);
	return p;
}

static __always_inline void ecap_submit(void *ctx, void *p, __u64 size)
{
	if (use_ringbuf) {
		bpf_ringbuf_submit(p, ecap_wakeup_flags());
		return;
	}
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, p, size))
		ecap_count(ECAP_CNT_LOST);
}

static __always_inline void ecap_discard(void *p)
{
	if (use_ringbuf)
		bpf_ringbuf_discard(p, BPF_RB_NO_WAKEUP);
}

/* libbpf 1.1 (Debian 12) stops at the fifth argument. */
#ifndef PT_REGS_PARM6
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_PARM6(x) (((struct pt_regs *)(x))->r9)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_PARM6(x) (((const __u64 *)(x))[5])
#endif
#endif

/* Argument of the bpf_loop callbacks that ECAP_DEFINE_CHUNK_COPY defines. */
struct ecap_chunk_ctx {
	void *regs;
	__u64 src; /* user address of the bytes */
	__u64 len; /* how many */
};

/* Defines `static long fn(__u32 index, void *arg)`, a bpf_loop callback that copies chunk `index`
 * (at most `chunk` bytes) of the ecap_chunk_ctx's bytes into the per-CPU `map` record (a header
 * `hdr` with `offset` and `data_len` fields, then `data[chunk]`) and outputs header + chunk. The
 * loop count is (len + chunk - 1) / chunk. */
#define ECAP_DEFINE_CHUNK_COPY(fn, map, chunk)                                                   \
	static long fn(__u32 index, void *arg)                                                   \
	{                                                                                        \
		struct ecap_chunk_ctx *c = arg;                                                  \
		__u32 zero = 0;                                                                  \
		typeof(map.value) s = bpf_map_lookup_elem(&map, &zero);                          \
		__u64 off = (__u64)index * (chunk);                                              \
		__u64 n;                                                                         \
                                                                                                 \
		if (!s || off >= c->len)                                                         \
			return 1;                                                                \
		n = c->len - off;                                                                \
		if (n > (chunk))                                                                 \
			n = (chunk);                                                             \
		s->hdr.offset = off;                                                             \
		s->hdr.data_len = n;                                                             \
		if (bpf_probe_read_user(s->data, n, (const void *)(c->src + off))) {             \
			ecap_count(ECAP_CNT_READ_FAILED);                                        \
			return 0;                                                                \
		}                                                                                \
		ecap_output(c->regs, s, sizeof(s->hdr) + n);                                     \
		return 0;                                                                        \
	}

/* The open file behind `fd` of the current task, or NULL. */
static __always_inline struct file *ecap_fd_to_file(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || !fdt)
		return NULL;
	if ((__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* The socket behind `fd` of the current task, or NULL. */
static __always_inline struct sock *ecap_fd_to_sock(__s32 fd)
{
	struct file *f = ecap_fd_to_file(fd);
	struct socket *sock;
	umode_t mode;

	if (!f)
		return NULL;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & ECAP_S_IFMT) != ECAP_S_IFSOCK)
		return NULL;
	sock = (struct socket *)BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* Fills `t` with the endpoints of the socket behind `fd` of the current task; leaves family 0
 * when fd is not a socket. */
static __always_inline void ecap_fill_tuple(__s32 fd, struct ecap_sock_tuple *t)
{
	struct sock *sk = ecap_fd_to_sock(fd);
	__u16 family;

	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == ECAP_AF_INET) {
		bpf_core_read(t->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->raddr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == ECAP_AF_INET6) {
		bpf_core_read(t->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return;
	}
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	t->family = family;
}

#endif /* ECAP_COMMON_BPF_H */
