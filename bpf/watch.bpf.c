// SPDX-License-Identifier: GPL-2.0
/* The target watcher, shared by the TLS modules of one ecapture: reports files that processes
 * map executable (or whose name starts with a configured prefix) and executables they start,
 * once per file until user space has decided about it (the `seen` map), and every mapping of a
 * file user space tracks (a hooked target), so that it knows which processes use which target.
 * A process that maps or executes a file not decided yet is stopped (SIGSTOP) until user space
 * has attached its hooks and sends SIGCONT; not when it has a controlling terminal, where a
 * stopped foreground job would make the shell print "Stopped". Forks and exits of the processes
 * that use a tracked file are reported, for the release of targets nobody uses any more. */
#include "common.bpf.h"
#include "watch_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define WATCH_PROT_EXEC 0x4
#define WATCH_SIGSTOP 19

/* ecapture itself: never stopped, never reported. */
const volatile __u32 self_tgid = 0;
/* false: report only, never stop a process (ECAPTURE_NO_PAUSE=1, for comparisons). */
const volatile bool pause_new = true;

/* Files every subscriber has decided about: not reported again unless tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct watch_file_key);
	__type(value, __u8);
} seen SEC(".maps");

/* Files some subscriber hooked: every mapping of them is reported (without a stop). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct watch_file_key);
	__type(value, __u8);
} tracked SEC(".maps");

/* Processes that use a tracked file: their forks and exits are reported. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} watched_pids SEC(".maps");

struct watch_prefix {
	char p[WATCH_PREFIX_LEN]; /* NUL-terminated; empty: unused slot */
};

/* Processes the kernel stopped, with when: user space resumes them after their event, and any
 * whose event was lost (ring buffer full) on its next sweep, and all of them when it exits. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} paused SEC(".maps");

/* Name prefixes ("libssl", "libgnutls", ...) whose files are reported however they are mapped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WATCH_MAX_PREFIXES);
	__type(key, __u32);
	__type(value, struct watch_prefix);
} prefixes SEC(".maps");

struct prefix_ctx {
	const char *name;
	bool match;
};

static long match_prefix(__u32 index, void *arg)
{
	struct prefix_ctx *c = arg;
	struct watch_prefix *p = bpf_map_lookup_elem(&prefixes, &index);
	int i;

	if (!p || !p->p[0])
		return 1; /* slots are filled in order: the first empty one ends the list */
	for (i = 0; i < WATCH_PREFIX_LEN; i++) {
		if (!p->p[i]) {
			c->match = true;
			return 1;
		}
		if (p->p[i] != c->name[i])
			return 0;
	}
	return 0;
}

static __always_inline bool name_has_prefix(const char *name)
{
	struct prefix_ctx c = {.name = name};

	bpf_loop(WATCH_MAX_PREFIXES, match_prefix, &c, 0);
	return c.match;
}

/* Fills the file key and name of `f`; false when it has no inode. */
static __always_inline bool file_identity(struct file *f, struct watch_event *e)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	const unsigned char *name;

	if (!inode)
		return false;
	e->file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->file.ino = BPF_CORE_READ(inode, i_ino);
	name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), name);
	return true;
}

static __always_inline bool has_tty(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, signal, tty) != NULL;
}

/* Reports `e` (its file filled in) when the file is tracked or not decided yet; stops the
 * process in the latter case. */
static __always_inline void report_file(void *ctx, struct watch_event *e, __u32 tgid)
{
	__u8 one = 1;

	if (bpf_map_lookup_elem(&tracked, &e->file)) {
		e->tracked = 1;
		ecap_map_update(&watched_pids, &tgid, &one, BPF_ANY);
	} else if (bpf_map_lookup_elem(&seen, &e->file)) {
		return;
	} else if (pause_new && !has_tty()) {
		__u64 now = bpf_ktime_get_ns();

		/* Never a stop that user space would not know of. */
		if (ecap_map_update(&paused, &tgid, &now, BPF_ANY) == 0) {
			if (bpf_send_signal(WATCH_SIGSTOP) == 0)
				e->paused = 1;
			else
				bpf_map_delete_elem(&paused, &tgid);
		}
	}
	e->pid = tgid;
	ecap_output(ctx, e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int tp_watch_mmap(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 prot = ctx->args[2];
	__s32 fd = (__s32)ctx->args[4];
	struct watch_event e = {};
	struct file *f;

	if (fd < 0 || ecap_filtered_out(id) || (__u32)(id >> 32) == self_tgid)
		return 0;
	f = ecap_fd_to_file(fd);
	if (!f || !file_identity(f, &e))
		return 0;
	if (!(prot & WATCH_PROT_EXEC) && !name_has_prefix(e.name))
		return 0;
	e.kind = WATCH_MAP;
	e.fd = fd;
	report_file(ctx, &e, id >> 32);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int tp_watch_exec(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct watch_event e = {};
	struct file *exe;

	if (ecap_filtered_out(id) || (__u32)(id >> 32) == self_tgid)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe || !file_identity(exe, &e))
		return 0;
	e.kind = WATCH_EXEC;
	e.fd = -1;
	report_file(ctx, &e, id >> 32);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int raw_watch_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	struct watch_event e = {};
	__u8 one = 1;

	if (ctgid == ptgid || !bpf_map_lookup_elem(&watched_pids, &ptgid))
		return 0; /* a thread, or a process that uses no tracked file */
	ecap_map_update(&watched_pids, &ctgid, &one, BPF_ANY);
	e.kind = WATCH_FORK;
	e.fd = -1;
	e.pid = ctgid;
	e.parent = ptgid;
	ecap_output(ctx, &e, sizeof(e));
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tp_watch_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct watch_event e = {};
	__u32 tgid = id >> 32;

	/* The tracepoint runs after the thread left signal->live: 0 means the whole group ended. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	if (!bpf_map_lookup_elem(&watched_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&watched_pids, &tgid);
	e.kind = WATCH_EXIT;
	e.fd = -1;
	e.pid = tgid;
	ecap_output(ctx, &e, sizeof(e));
	return 0;
}
