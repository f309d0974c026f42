// SPDX-License-Identifier: GPL-2.0
/* PostgreSQL statement audit: a uprobe on pgstat_report_activity (exported, and called with the
 * statement text whenever a backend starts a simple query or a Parse/Bind/Execute message, and
 * with no text when it goes idle) copies the text, of any length, in chunks. One trap per
 * call. */
#include "common.bpf.h"
#include "modules/postgres/postgres_abi.h"

char LICENSE[] SEC("license") = "GPL";

struct record_scratch {
	struct postgres_event hdr;
	char data[POSTGRES_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct record_scratch);
} scratch SEC(".maps");

struct copy_ctx {
	void *regs;
	__u64 src;
	__u32 done;
};

/* Copies one chunk of the NUL-terminated text; stops at its end. */
static long copy_chunk(__u32 index, void *arg)
{
	struct copy_ctx *c = arg;
	__u32 zero = 0;
	struct record_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	/* each chunk holds POSTGRES_CHUNK - 1 text bytes: read_str always writes a NUL */
	__u64 off = (__u64)index * (POSTGRES_CHUNK - 1);
	long n;

	if (!s)
		return 1;
	n = bpf_probe_read_user_str(s->data, POSTGRES_CHUNK, (const void *)(c->src + off));
	if (n <= 0) {
		ecap_count(ECAP_CNT_READ_FAILED);
		n = 1; /* report the end of what could be read */
		s->data[0] = 0;
	}
	s->hdr.offset = off;
	s->hdr.flags = 0;
	if (n < (long)POSTGRES_CHUNK) {
		s->hdr.flags = POSTGRES_F_LAST;
		c->done = 1;
	} else if (off + 2 * (POSTGRES_CHUNK - 1) > POSTGRES_CAPTURE_MAX) {
		s->hdr.flags = POSTGRES_F_LAST | POSTGRES_F_TRUNCATED;
		c->done = 1;
	}
	n -= 1;
	s->hdr.data_len = n;
	if (n < 0 || n >= (long)POSTGRES_CHUNK)
		return 1;
	ecap_output(c->regs, s, sizeof(s->hdr) + n);
	if (index == 0)
		__builtin_memset(s->hdr.title, 0, sizeof(s->hdr.title));
	if (c->done)
		return 1;
	return 0;
}

static __always_inline void read_title(char *title)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 arg_start = BPF_CORE_READ(task, mm, arg_start);

	if (arg_start)
		bpf_probe_read_user_str(title, POSTGRES_TITLE_LEN, (const void *)arg_start);
}

SEC("uprobe")
int probe_postgres_enter(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u8 hook = (__u8)bpf_get_attach_cookie(ctx);
	struct record_scratch *s;
	struct copy_ctx cc = {};
	__u32 zero = 0, state;
	__u64 text;

	if (ecap_filtered_out(id))
		return 0;
	if (hook == POSTGRES_HOOK_ACTIVITY) {
		state = (__u32)PT_REGS_PARM1(ctx);
		text = PT_REGS_PARM2(ctx);
		if (state != POSTGRES_STATE_RUNNING)
			text = 0;
	} else {
		state = POSTGRES_STATE_RUNNING;
		text = PT_REGS_PARM1(ctx);
	}
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));
	ECAP_FILL_TASK(&s->hdr, id);
	s->hdr.state = state;
	s->hdr.hook = hook;
	if (!text) {
		if (hook != POSTGRES_HOOK_ACTIVITY)
			return 0;
		s->hdr.kind = POSTGRES_RECORD_STATE;
		ecap_output(ctx, s, sizeof(s->hdr));
		return 0;
	}
	s->hdr.kind = POSTGRES_RECORD_TEXT;
	read_title(s->hdr.title);
	cc.regs = ctx;
	cc.src = text;
	bpf_loop(POSTGRES_CAPTURE_MAX / (POSTGRES_CHUNK - 1) + 1, copy_chunk, &cc, 0);
	return 0;
}
