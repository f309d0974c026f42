/* Records of the shell audit modules (bash, zsh; bpf/shell.bpf.c), shared with C++. */
#ifndef ECAP_SHELL_ABI_H
#define ECAP_SHELL_ABI_H

#include "ecap_abi.h"

enum shell_record_kind {
	/* A chunk of a line the line editor returned (readline, zle). */
	SHELL_RECORD_LINE = 0,
	/* The line editor was entered for a new command: `status` is the exit status of the
	 * previous command (bash's last_command_exit_value, zsh's lastval). */
	SHELL_RECORD_PROMPT = 1,
	/* The shell process replaced its image (exec): the command in flight has no status. */
	SHELL_RECORD_EXEC = 2,
	/* The shell process exited; `status` is its exit code, -1 when a signal killed it. */
	SHELL_RECORD_EXIT = 3,
};

enum shell_record_flags {
	/* LINE: read for a command that is running (`read -e`, zsh `select`), not a command. */
	SHELL_F_INPUT = 1,
	/* LINE: a continuation line (PS2) of a command. PROMPT: the editor was entered for a
	 * continuation line, so no command has finished. */
	SHELL_F_CONTINUATION = 2,
	/* PROMPT: `status` could not be read. */
	SHELL_F_NO_STATUS = 4,
	/* LINE: the final chunk of the line. */
	SHELL_F_LAST = 8,
};

struct shell_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC */
	__u64 offset;       /* LINE: where data[] starts within the line */
	__u32 pid;          /* tgid */
	__u32 uid;
	__s32 status;
	__u32 data_len; /* LINE: bytes following the header */
	__u8 kind;      /* enum shell_record_kind */
	__u8 flags;     /* enum shell_record_flags */
	__u8 pad[6];
	char comm[ECAP_TASK_COMM_LEN];
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
	/* followed by data_len bytes of the line (no NUL) */
};

/* Lines of any length are sent in chunks of at most SHELL_CHUNK bytes; a line that needs more
 * than SHELL_MAX_CHUNKS chunks (64 MiB) ends without a SHELL_F_LAST chunk. */
#define SHELL_CHUNK 8192
#define SHELL_MAX_CHUNKS 8192

/* zsh's zleentry(int cmd, char **lp, char **rp, int flags, int context) */
#define SHELL_ZLE_CMD_READ 1
#define SHELL_ZLCON_LINE_START 0
#define SHELL_ZLCON_LINE_CONT 1

#endif /* ECAP_SHELL_ABI_H */
