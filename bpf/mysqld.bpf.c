// SPDX-License-Identifier: GPL-2.0
/* MySQL/MariaDB command audit: a uprobe on dispatch_command copies the command's packet (the query
 * text, in chunks, any size), a uprobe on the server's send_error notes the error it answers
 * with, the write/sendto syscall tracepoints read the statement id out of a COM_STMT_PREPARE
 * answer (returning at once while no prepare is in flight), and the uretprobe reports the outcome
 * and the duration. Two traps per command; one more on errors. */
#include "common.bpf.h"
#include "modules/mysqld/mysqld_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* cmd_state.flags only: the answer to a COM_STMT_PREPARE was seen. */
#define STATE_F_ANSWERED 0x80

/* The command in flight on a thread. A new entry replaces it: an entry whose return probe was not
 * yet attached (capture starting mid-call) must not leave the thread stuck. */
struct cmd_state {
	__u64 start_ns;
	__u64 thd;
	__u64 total_len;
	__u32 command;
	__u32 pad0;
	__u32 sql_errno;
	__u32 stmt_id;
	__u32 errmsg_len;
	__u8 flags;
	__u8 pad[3];
	char errmsg[MYSQLD_ERRMSG_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct cmd_state);
} active_cmds SEC(".maps");

struct record_scratch {
	struct mysqld_event hdr;
	__u8 data[MYSQLD_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record_scratch);
} scratch SEC(".maps");

/* A zeroed state to insert (too large for the BPF stack); never written. */
ECAP_SCRATCH_MAP(state_init, struct cmd_state);

/* COM_STMT_PREPAREs in flight whose answer was not seen: the syscall tracepoints' fast exit. */
__u64 prepares_in_flight = 0;

static __always_inline void prepare_done(struct cmd_state *st)
{
	if (st->command == MYSQLD_COM_STMT_PREPARE && !(st->flags & STATE_F_ANSWERED)) {
		st->flags |= STATE_F_ANSWERED;
		__sync_fetch_and_add(&prepares_in_flight, -1);
	}
}

/* Removes the thread's command (and its prepare count). */
static __always_inline void drop_cmd(__u64 id)
{
	struct cmd_state *st = bpf_map_lookup_elem(&active_cmds, &id);

	if (!st)
		return;
	prepare_done(st);
	bpf_map_delete_elem(&active_cmds, &id);
}

ECAP_DEFINE_CHUNK_COPY(copy_chunk, scratch, MYSQLD_CHUNK)

static __always_inline bool is_stmt_command(__u32 cmd)
{
	return cmd == MYSQLD_COM_STMT_EXECUTE || cmd == MYSQLD_COM_STMT_SEND_LONG_DATA ||
	       cmd == MYSQLD_COM_STMT_CLOSE || cmd == MYSQLD_COM_STMT_RESET ||
	       cmd == MYSQLD_COM_STMT_FETCH || cmd == MYSQLD_COM_STMT_BULK_EXECUTE;
}

/* COM_DATA members that start with {const char *text; unsigned length}: COM_INIT_DB,
 * COM_QUERY, COM_FIELD_LIST, COM_STMT_PREPARE. */
static __always_inline bool com_data_has_text(__u32 cmd)
{
	return cmd == 2 || cmd == MYSQLD_COM_QUERY || cmd == 4 || cmd == MYSQLD_COM_STMT_PREPARE;
}

SEC("uprobe")
int probe_mysqld_dispatch_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 abi = (__u32)bpf_get_attach_cookie(ctx);
	struct record_scratch *s;
	struct cmd_state *st;
	struct ecap_chunk_ctx cc = {};
	__u32 zero = 0, cmd;
	__u64 thd, src = 0, len = 0;

	if (ecap_filtered_out(id))
		return 0;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));

	if (abi == MYSQLD_ABI_LEGACY) {
		cmd = (__u32)PT_REGS_PARM1(ctx);
		thd = PT_REGS_PARM2(ctx);
		src = PT_REGS_PARM3(ctx);
		len = (__u32)PT_REGS_PARM4(ctx);
		if (is_stmt_command(cmd) && len > MYSQLD_STMT_COPY)
			len = MYSQLD_STMT_COPY;
	} else {
		__u64 com_data = PT_REGS_PARM2(ctx);
		struct {
			__u64 ptr;
			__u32 len;
		} text = {};

		thd = PT_REGS_PARM1(ctx);
		cmd = (__u32)PT_REGS_PARM3(ctx);
		if (com_data_has_text(cmd) &&
		    !bpf_probe_read_user(&text, sizeof(text), (const void *)com_data)) {
			src = text.ptr;
			len = text.len;
		} else if (is_stmt_command(cmd)) {
			/* The id is the first member (unsigned long or unsigned int): copy it as
			 * the 4 little-endian bytes a packet would start with. */
			src = com_data;
			len = MYSQLD_STMT_COPY;
		}
	}
	if (!src)
		len = 0;

	st = bpf_map_lookup_elem(&state_init, &zero);
	if (!st)
		return 0;
	drop_cmd(id);
	if (ecap_map_update(&active_cmds, &id, st, BPF_ANY))
		return 0;
	st = bpf_map_lookup_elem(&active_cmds, &id);
	if (!st)
		return 0;
	if (cmd == MYSQLD_COM_STMT_PREPARE)
		__sync_fetch_and_add(&prepares_in_flight, 1);
	st->start_ns = bpf_ktime_get_ns();
	st->thd = thd;
	st->total_len = len;
	st->command = cmd;

	ECAP_FILL_TASK(&s->hdr, id);
	s->hdr.timestamp_ns = st->start_ns;
	s->hdr.thd = thd;
	s->hdr.total_len = len;
	s->hdr.command = cmd;
	s->hdr.kind = MYSQLD_RECORD_DATA;
	if (len == 0)
		return 0;
	cc.regs = ctx;
	cc.src = src;
	cc.len = len < MYSQLD_CAPTURE_MAX ? len : MYSQLD_CAPTURE_MAX;
	bpf_loop((cc.len + MYSQLD_CHUNK - 1) / MYSQLD_CHUNK, copy_chunk, &cc, 0);
	return 0;
}

SEC("uretprobe")
int probe_mysqld_dispatch_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cmd_state *st = bpf_map_lookup_elem(&active_cmds, &id);
	struct record_scratch *s;
	__u32 zero = 0, n;
	__u64 now;

	if (!st)
		return 0;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		drop_cmd(id);
		return 0;
	}
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));
	ECAP_FILL_TASK(&s->hdr, id);
	now = s->hdr.timestamp_ns;
	s->hdr.timestamp_ns = st->start_ns;
	s->hdr.thd = st->thd;
	s->hdr.total_len = st->total_len;
	s->hdr.duration_ns = now - st->start_ns;
	/* bool in MariaDB and MySQL: only the low byte is defined */
	s->hdr.retval = (__u8)PT_REGS_RC(ctx);
	s->hdr.command = st->command;
	s->hdr.sql_errno = st->sql_errno;
	s->hdr.stmt_id = st->stmt_id;
	s->hdr.flags = st->flags & (MYSQLD_F_ERROR | MYSQLD_F_STMT_ID);
	s->hdr.kind = MYSQLD_RECORD_END;
	n = st->errmsg_len;
	if (n > MYSQLD_ERRMSG_MAX)
		n = MYSQLD_ERRMSG_MAX;
	__builtin_memcpy(s->data, st->errmsg, MYSQLD_ERRMSG_MAX);
	s->hdr.data_len = n;
	drop_cmd(id);
	ecap_output(ctx, s, sizeof(s->hdr) + n);
	return 0;
}

/* The function that sends an error packet to the client, for the command in flight. The cookie
 * is the position of its sql_errno argument; the message follows it:
 * MariaDB Protocol::net_send_error_packet(this, THD*, uint, const char *, const char *): 3;
 * MySQL net_send_error_packet(THD*, uint, const char*, const char*) and
 * Protocol_classic::send_error(this, uint, const char*, const char*): 2. */
SEC("uprobe")
int probe_mysqld_send_error(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cmd_state *st = bpf_map_lookup_elem(&active_cmds, &id);
	__u64 msg, a2, a3, a4;
	long n;

	if (!st || (st->flags & MYSQLD_F_ERROR))
		return 0;
	/* All loaded first: a ctx offset chosen at run time is refused by the verifier. */
	a2 = PT_REGS_PARM2(ctx);
	a3 = PT_REGS_PARM3(ctx);
	a4 = PT_REGS_PARM4(ctx);
	barrier_var(a2);
	barrier_var(a3);
	barrier_var(a4);
	st->flags |= MYSQLD_F_ERROR;
	if (bpf_get_attach_cookie(ctx) == 3) {
		st->sql_errno = (__u32)a3;
		msg = a4;
	} else {
		st->sql_errno = (__u32)a2;
		msg = a3;
	}
	n = bpf_probe_read_user_str(st->errmsg, sizeof(st->errmsg), (const void *)msg);
	st->errmsg_len = n > 0 ? n - 1 : 0;
	return 0;
}

/* While a thread answers a COM_STMT_PREPARE, its first write to the client starts with the
 * COM_STMT_PREPARE_OK packet: 3-byte length, sequence id, 0x00, 4-byte statement id. */
static __always_inline int prepare_answer(__u64 buf, __u64 len)
{
	struct cmd_state *st;
	__u8 head[9];
	__u64 id;

	if (!prepares_in_flight)
		return 0;
	id = bpf_get_current_pid_tgid();
	if (ecap_filtered_out(id))
		return 0;
	st = bpf_map_lookup_elem(&active_cmds, &id);
	if (!st || st->command != MYSQLD_COM_STMT_PREPARE || (st->flags & STATE_F_ANSWERED))
		return 0;
	if (len < sizeof(head) || bpf_probe_read_user(head, sizeof(head), (const void *)buf))
		return 0;
	/* Only the first answer counts; an error packet (0xff) has no id. */
	prepare_done(st);
	if (head[4] != 0x00)
		return 0;
	st->flags |= MYSQLD_F_STMT_ID;
	st->stmt_id = head[5] | (head[6] << 8) | (head[7] << 16) | ((__u32)head[8] << 24);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int tp_mysqld_write(struct trace_event_raw_sys_enter *ctx)
{
	return prepare_answer(ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int tp_mysqld_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return prepare_answer(ctx->args[1], ctx->args[2]);
}

/* A thread that dies inside a command leaves no entry. */
SEC("tracepoint/sched/sched_process_exit")
int tp_mysqld_thread_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!ecap_filtered_out(id))
		drop_cmd(id);
	return 0;
}
