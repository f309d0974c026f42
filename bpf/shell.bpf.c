// SPDX-License-Identifier: GPL-2.0
/* Shell audit for bash and zsh: the line editor's return gives each typed line (bash:
 * readline_internal_teardown or readline; zsh: zleentry(ZLE_CMD_READ)), its entry for a new
 * command gives the previous command's exit status (read from the shell's globals), and the
 * exec/exit tracepoints close the command a shell was running when it went away. Only processes
 * that read a line through the line editor are tracked, so scripts cost nothing but the exec/exit
 * tracepoints' map lookup. */
#include "common.bpf.h"
#include "modules/shell/shell_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* The shell executable (inode, kernel dev_t): globals are read only in processes running it. */
const volatile __u64 shell_ino = 0;
const volatile __u32 shell_dev = 0;
/* Addresses of the shell's globals relative to mm->start_code (the load address of its first
 * executable segment); 0: not available. */
const volatile __u64 off_status = 0;      /* bash last_command_exit_value, zsh lastval (int) */
const volatile __u64 off_line_count = 0;  /* bash current_command_line_count (int) */
const volatile __u64 off_interactive = 0; /* bash interactive (int) */
const volatile __u64 off_executing = 0;   /* bash executing (int) */

/* Shells (tgid) that read a line since capture started: their exec/exit closes a command. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} shell_pids SEC(".maps");

/* zsh: the context of a zleentry(ZLE_CMD_READ) call in flight, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
} zle_reads SEC(".maps");

struct shell_scratch {
	struct shell_event hdr;
	char data[SHELL_CHUNK + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shell_scratch);
} shell_scratch SEC(".maps");

/* mm->start_code of the current process when it runs the shell executable. */
static __always_inline bool shell_base(__u64 *base)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct inode *inode;

	if (!mm || !shell_ino)
		return false;
	inode = BPF_CORE_READ(mm, exe_file, f_inode);
	if (!inode || BPF_CORE_READ(inode, i_ino) != shell_ino ||
	    BPF_CORE_READ(inode, i_sb, s_dev) != shell_dev)
		return false;
	*base = BPF_CORE_READ(mm, start_code);
	return *base != 0;
}

static __always_inline bool read_global(__u64 base, __u64 off, __s32 *v)
{
	if (!off)
		return false;
	if (bpf_probe_read_user(v, sizeof(*v), (const void *)(base + off))) {
		ecap_count(ECAP_CNT_READ_FAILED);
		return false;
	}
	return true;
}

static __always_inline void fill_header(struct shell_event *h, __u64 id, __u8 kind, __u8 flags,
					__s32 status)
{
	ECAP_FILL_PROCESS(h, id);
	h->offset = 0;
	h->status = status;
	h->data_len = 0;
	h->kind = kind;
	h->flags = flags;
}

static __always_inline void emit_small(void *ctx, __u64 id, __u8 kind, __u8 flags, __s32 status)
{
	struct shell_event h = {};

	fill_header(&h, id, kind, flags, status);
	ecap_output(ctx, &h, sizeof(h));
}

struct line_ctx {
	void *regs;
	__u64 str;
};

static long emit_line_chunk(__u32 index, void *arg)
{
	struct line_ctx *c = arg;
	__u32 zero = 0;
	struct shell_scratch *s = bpf_map_lookup_elem(&shell_scratch, &zero);
	__u64 off = (__u64)index * SHELL_CHUNK;
	long n;
	__u32 len;

	if (!s)
		return 1;
	s->hdr.offset = off;
	/* SHELL_CHUNK + 1 bytes: a full result means the line goes on past this chunk. */
	n = bpf_probe_read_user_str(s->data, SHELL_CHUNK + 1, (const void *)(c->str + off));
	if (n <= 0) {
		ecap_count(ECAP_CNT_READ_FAILED);
		s->hdr.data_len = 0;
		s->hdr.flags |= SHELL_F_LAST;
		ecap_output(c->regs, s, sizeof(s->hdr));
		return 1;
	}
	if (n > SHELL_CHUNK) {
		len = SHELL_CHUNK;
	} else {
		len = n - 1;
		s->hdr.flags |= SHELL_F_LAST;
	}
	s->hdr.data_len = len;
	ecap_output(c->regs, s, sizeof(s->hdr) + len);
	return (s->hdr.flags & SHELL_F_LAST) ? 1 : 0;
}

/* Sends the NUL-terminated line at `str` in chunks and marks the process as a tracked shell. */
static __always_inline void emit_line(void *ctx, __u64 id, __u64 str, __u8 flags)
{
	__u32 zero = 0, tgid = id >> 32;
	struct shell_scratch *s = bpf_map_lookup_elem(&shell_scratch, &zero);
	struct line_ctx c = {.regs = ctx, .str = str};
	__u8 one = 1;

	if (!s)
		return;
	fill_header(&s->hdr, id, SHELL_RECORD_LINE, flags, 0);
	ecap_map_update(&shell_pids, &tgid, &one, BPF_ANY);
	bpf_loop(SHELL_MAX_CHUNKS, emit_line_chunk, &c, 0);
}

/* True when the process read a line since capture started (so a command of ours may run). */
static __always_inline bool tracked(__u64 id)
{
	__u32 tgid = id >> 32;

	return bpf_map_lookup_elem(&shell_pids, &tgid) != NULL;
}

/* The editor is entered: for a new command, report the status of the previous one. */
static __always_inline void emit_prompt(void *ctx, __u64 id, bool have_base, __u64 base,
					bool continuation)
{
	__u8 flags = continuation ? SHELL_F_CONTINUATION : 0;
	__s32 status = -1;

	if (!have_base || !read_global(base, off_status, &status))
		flags |= SHELL_F_NO_STATUS;
	emit_small(ctx, id, SHELL_RECORD_PROMPT, flags, status);
}

/* ---- bash ---- */

SEC("uprobe")
int probe_bash_readline_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__s32 line_count = 0, executing = 0;
	__u64 base = 0;
	bool have_base;

	if (ecap_filtered_out(id) || !tracked(id))
		return 0;
	/* current_command_line_count is 0 when bash reads the first line of a command. */
	have_base = shell_base(&base);
	if (have_base) {
		read_global(base, off_line_count, &line_count);
		read_global(base, off_executing, &executing);
	}
	if (executing)
		return 0; /* `read -e` in a running command: no command has finished */
	emit_prompt(ctx, id, have_base, base, line_count > 0);
	return 0;
}

SEC("uretprobe")
int probe_bash_line_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 str = PT_REGS_RC(ctx);
	__s32 interactive = 0, executing = 0, line_count = 0;
	__u8 flags = 0;
	__u64 base;

	if (!str || ecap_filtered_out(id))
		return 0; /* NULL: end of input */
	if (!shell_base(&base))
		return 0; /* a readline user that is not this bash (--readlineso) */
	if (!read_global(base, off_interactive, &interactive) || !interactive)
		return 0; /* `read -e` in a script */
	if (read_global(base, off_executing, &executing) && executing)
		flags |= SHELL_F_INPUT;
	if (read_global(base, off_line_count, &line_count) && line_count > 0)
		flags |= SHELL_F_CONTINUATION;
	emit_line(ctx, id, str, flags);
	return 0;
}

/* ---- zsh ---- */

SEC("uprobe")
int probe_zsh_zleentry_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 context;
	__u64 base = 0;
	bool have_base;

	if ((int)PT_REGS_PARM1(ctx) != SHELL_ZLE_CMD_READ || ecap_filtered_out(id))
		return 0;
	context = (__u32)PT_REGS_PARM5(ctx);
	ecap_map_update(&zle_reads, &id, &context, BPF_ANY);
	if (tracked(id)) {
		have_base = shell_base(&base);
		emit_prompt(ctx, id, have_base, base, context != SHELL_ZLCON_LINE_START);
	}
	return 0;
}

SEC("uretprobe")
int probe_zsh_zleentry_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 str = PT_REGS_RC(ctx);
	__u32 *ctxp = bpf_map_lookup_elem(&zle_reads, &id);
	__u32 context;
	__u8 flags = 0;

	if (!ctxp)
		return 0; /* not a read, or the entry was missed */
	context = *ctxp;
	bpf_map_delete_elem(&zle_reads, &id);
	if (!str)
		return 0;
	if (context == SHELL_ZLCON_LINE_CONT)
		flags |= SHELL_F_CONTINUATION;
	else if (context != SHELL_ZLCON_LINE_START)
		flags |= SHELL_F_INPUT; /* select, vared */
	emit_line(ctx, id, str, flags);
	return 0;
}

/* ---- both: the shell goes away while a command runs ---- */

SEC("tracepoint/sched/sched_process_exec")
int tp_shell_exec(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (!bpf_map_lookup_elem(&shell_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&shell_pids, &tgid);
	emit_small(ctx, id, SHELL_RECORD_EXEC, 0, -1);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_shell_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task;
	int code;

	bpf_map_delete_elem(&zle_reads, &id); /* a zsh thread that died inside zleentry */
	if ((__u32)id != tgid || !bpf_map_lookup_elem(&shell_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&shell_pids, &tgid);
	task = (struct task_struct *)bpf_get_current_task();
	code = BPF_CORE_READ(task, exit_code);
	/* wait status: exit code in bits 8-15 when no signal (bits 0-6) ended it */
	emit_small(ctx, id, SHELL_RECORD_EXIT, 0, (code & 0x7f) ? -1 : (code >> 8) & 0xff);
	return 0;
}
