/* Records of the postgres module (bpf/postgres.bpf.c), shared with C++. */
#ifndef ECAP_POSTGRES_ABI_H
#define ECAP_POSTGRES_ABI_H

#include "ecap_abi.h"

/* How the hooked function is read (the attach cookie). */
enum postgres_hook {
	/* pgstat_report_activity(BackendState state, const char *cmd_str): the backend starts
	 * running cmd_str (simple query, Parse, Bind, Execute) or goes idle. */
	POSTGRES_HOOK_ACTIVITY = 0,
	/* A function whose first argument is the statement text (pg_parse_query,
	 * exec_simple_query, ...): one statement per call. */
	POSTGRES_HOOK_TEXT_ARG0 = 1,
};

enum postgres_record_kind {
	POSTGRES_RECORD_TEXT = 0,  /* a chunk of a statement's text */
	POSTGRES_RECORD_STATE = 1, /* the backend changed to a state without text (idle, ...) */
};

enum postgres_flags {
	POSTGRES_F_LAST = 1,      /* the last chunk of the text */
	POSTGRES_F_TRUNCATED = 2, /* the text was longer than POSTGRES_CAPTURE_MAX */
};

/* PostgreSQL's BackendState (utils/backend_status.h), stable since 9.x. */
#define POSTGRES_STATE_IDLE 1
#define POSTGRES_STATE_RUNNING 2

#define POSTGRES_TITLE_LEN 48

struct postgres_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC */
	__u64 offset;       /* TEXT: where data[] starts in the statement text */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 data_len;
	__u32 state; /* BackendState (POSTGRES_HOOK_ACTIVITY); 2 for POSTGRES_HOOK_TEXT_ARG0 */
	__u8 kind;   /* enum postgres_record_kind */
	__u8 flags;  /* enum postgres_flags */
	__u8 hook;   /* enum postgres_hook */
	__u8 pad;
	char comm[ECAP_TASK_COMM_LEN];
	/* The process title (argv area), first chunk only: "postgres: parallel worker for ..." */
	char title[POSTGRES_TITLE_LEN];
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
	/* followed by data_len bytes */
};

#define POSTGRES_RECORD_MAX 32768
#define POSTGRES_CHUNK (POSTGRES_RECORD_MAX - sizeof(struct postgres_event))
#define POSTGRES_CAPTURE_MAX (16u << 20)

#endif /* ECAP_POSTGRES_ABI_H */
