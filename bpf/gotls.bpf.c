// SPDX-License-Identifier: GPL-2.0
/* Go crypto/tls capture. Writes: uprobe at (*Conn).writeRecordLocked entry, application data
 * records only. Reads: an entry uprobe on (*Conn).Read saves the buffer keyed by goroutine (Go
 * moves goroutine stacks, so no uretprobes), and uprobes on each RET of the function emit the n
 * bytes read. Keys: (*Config).writeKeyLog entry gives label, client random and secret. The
 * connection's fd comes from the *tls.Conn (conn interface -> *net.TCPConn -> *netFD -> Sysfd),
 * the 4-tuple from the task's file table: no kprobes, no syscall hooks. */
#include "common.bpf.h"
#include "modules/gotls/gotls_abi.h"
#include "tls_emit.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space: Go < 1.17 (amd64) / 1.18 (arm64) pass arguments on the stack. */
const volatile bool stack_abi = false;

struct g_key {
	__u32 tgid;
	__u32 pad;
	__u64 g; /* the goroutine (R14 / X28); the thread id under the stack ABI */
};

struct read_call {
	__u64 conn;
	__u64 buf;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct g_key);
	__type(value, struct read_call);
} reads SEC(".maps");

/* Goroutine doing a handshake -> its *tls.Conn (for the fd of the keys it logs). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct g_key);
	__type(value, __u64);
} handshakes SEC(".maps");

/* Perf-buffer kernels only: records are reserved in the ring buffer otherwise. */
ECAP_SCRATCH_MAP(keys_scratch, struct gotls_keys_event);

/* Offset in pt_regs of the register holding integer argument word `i` (ABIInternal). */
static __always_inline __u32 go_reg_offset(int i)
{
#if defined(__TARGET_ARCH_x86)
	switch (i) {
	case 0: return offsetof(struct pt_regs, ax);
	case 1: return offsetof(struct pt_regs, bx);
	case 2: return offsetof(struct pt_regs, cx);
	case 3: return offsetof(struct pt_regs, di);
	case 4: return offsetof(struct pt_regs, si);
	case 5: return offsetof(struct pt_regs, r8);
	case 6: return offsetof(struct pt_regs, r9);
	case 7: return offsetof(struct pt_regs, r10);
	default: return offsetof(struct pt_regs, r11);
	}
#elif defined(__TARGET_ARCH_arm64)
	return offsetof(struct user_pt_regs, regs) + 8 * (i & 15);
#endif
}

/* Argument word `i` (see go_arg_location in src/elf/go_binary.h). */
static __always_inline __u64 go_arg(struct pt_regs *ctx, int i)
{
	__u64 v = 0;

	if (stack_abi) {
		bpf_probe_read_user(&v, sizeof(v), (void *)(PT_REGS_SP(ctx) + 8 * (i + 1)));
		return v;
	}
	/* The register is read through its offset: the verifier refuses computed ctx accesses. */
	bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + go_reg_offset(i));
	return v;
}

static __always_inline struct g_key current_g(struct pt_regs *ctx, __u64 id)
{
	struct g_key k = {.tgid = id >> 32};

	if (stack_abi) {
		k.g = (__u32)id;
		return k;
	}
#if defined(__TARGET_ARCH_x86)
	k.g = ctx->r14;
#elif defined(__TARGET_ARCH_arm64)
	k.g = ((struct user_pt_regs *)ctx)->regs[28];
#endif
	return k;
}

static __always_inline __s32 conn_fd(__u64 conn)
{
	__u64 tcp = 0, nfd = 0;
	__s64 fd = -1;

	if (!conn || bpf_probe_read_user(&tcp, sizeof(tcp), (void *)(conn + GOTLS_CONN_IFACE_DATA)) ||
	    !tcp)
		return -1;
	if (bpf_probe_read_user(&nfd, sizeof(nfd), (void *)tcp) || !nfd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(nfd + GOTLS_NETFD_SYSFD)))
		return -1;
	if (fd < 0 || fd > 0x7fffffff)
		return -1;
	return (__s32)fd;
}

static __always_inline void emit_data(struct pt_regs *ctx, __u64 id, __u64 conn, __u64 buf,
				      __u64 len, __u8 direction, __u8 api)
{
	if (len == 0 || len > (1ull << 31))
		return;
	tls_emit_record(ctx, id, conn, conn_fd(conn), buf, len, direction, api);
}

SEC("uprobe")
int probe_gotls_write(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (ecap_filtered_out(id))
		return 0;
	if ((__u8)go_arg(ctx, GOTLS_WRITE_TYPE) != 23) /* application data */
		return 0;
	emit_data(ctx, id, go_arg(ctx, 0), go_arg(ctx, GOTLS_WRITE_DATA),
		  go_arg(ctx, GOTLS_WRITE_LEN), ECAP_DIR_WRITE, GOTLS_API_WRITE);
	return 0;
}

SEC("uprobe")
int probe_gotls_read_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct g_key k;
	struct read_call rc;

	if (ecap_filtered_out(id))
		return 0;
	k = current_g(ctx, id);
	rc.conn = go_arg(ctx, 0);
	rc.buf = go_arg(ctx, GOTLS_READ_BUF);
	ecap_map_update(&reads, &k, &rc, BPF_ANY);
	return 0;
}

SEC("uprobe")
int probe_gotls_read_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct g_key k;
	struct read_call *rcp, rc;
	__s64 n;

	if (ecap_filtered_out(id))
		return 0;
	k = current_g(ctx, id);
	rcp = bpf_map_lookup_elem(&reads, &k);
	if (!rcp)
		return 0;
	rc = *rcp;
	bpf_map_delete_elem(&reads, &k);
	/* At RET the results sit where the arguments did (stack ABI: after the 4 argument words). */
	n = (__s64)go_arg(ctx, stack_abi ? GOTLS_READ_RESULT_N : 0);
	if (n <= 0)
		return 0;
	emit_data(ctx, id, rc.conn, rc.buf, (__u64)n, ECAP_DIR_READ, GOTLS_API_READ);
	return 0;
}

SEC("uprobe")
int probe_gotls_handshake(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct g_key k;
	__u64 conn;

	if (ecap_filtered_out(id))
		return 0;
	k = current_g(ctx, id);
	conn = go_arg(ctx, 0);
	ecap_map_update(&handshakes, &k, &conn, BPF_ANY);
	return 0;
}

SEC("uprobe")
int probe_gotls_keylog(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct gotls_keys_event *e;
	struct g_key k;
	__u64 *conn, lp, rp, sp, ll, rl, sl;

	if (ecap_filtered_out(id))
		return 0;
	lp = go_arg(ctx, GOTLS_KEYLOG_LABEL);
	ll = go_arg(ctx, GOTLS_KEYLOG_LABEL_LEN);
	rp = go_arg(ctx, GOTLS_KEYLOG_RANDOM);
	rl = go_arg(ctx, GOTLS_KEYLOG_RANDOM_LEN);
	sp = go_arg(ctx, GOTLS_KEYLOG_SECRET);
	sl = go_arg(ctx, GOTLS_KEYLOG_SECRET_LEN);
	if (ll == 0 || ll > GOTLS_LABEL_MAX || rl != GOTLS_RANDOM_MAX || sl == 0 ||
	    sl > GOTLS_SECRET_MAX)
		return 0;
	e = ecap_reserve(&keys_scratch, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	if (bpf_probe_read_user(e->label, ll, (void *)lp) ||
	    bpf_probe_read_user(e->client_random, GOTLS_RANDOM_MAX, (void *)rp) ||
	    bpf_probe_read_user(e->secret, sl, (void *)sp)) {
		ecap_count(ECAP_CNT_READ_FAILED);
		ecap_discard(e);
		return 0;
	}
	e->kind = TLS_RECORD_KEYS;
	e->label_len = ll;
	e->random_len = rl;
	e->secret_len = sl;
	ECAP_FILL_TASK(e, id);
	k = current_g(ctx, id);
	conn = bpf_map_lookup_elem(&handshakes, &k);
	e->fd = -1;
	if (conn) {
		e->conn_id = *conn;
		e->fd = conn_fd(*conn);
		ecap_fill_tuple(e->fd, &e->tuple);
	}
	ecap_submit(ctx, e, sizeof(*e));
	return 0;
}
