/* Records of the shared target watcher (bpf/watch.bpf.c), shared with C++
 * (src/tls/target_watcher.h): files that processes map or execute, and processes that end. */
#ifndef ECAP_WATCH_ABI_H
#define ECAP_WATCH_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define WATCH_NAME_LEN 64
#define WATCH_PREFIX_LEN 16
#define WATCH_MAX_PREFIXES 8

enum watch_kind {
	WATCH_MAP = 1,	/* a process maps a file (fd) not seen yet, or one that is tracked */
	WATCH_EXEC = 2, /* a process executes a file not seen yet, or one that is tracked */
	WATCH_FORK = 3, /* a tracked process made a child (pid = child, parent = parent) */
	WATCH_EXIT = 4, /* the last thread of a tracked process ended */
};

/* A file identity as the kernel holds it: inode->i_sb->s_dev (kernel dev_t encoding,
 * major << 20 | minor) and inode->i_ino. */
struct watch_file_key {
	__u64 dev;
	__u64 ino;
};

struct watch_event {
	__u8 kind;    /* enum watch_kind */
	__u8 paused;  /* 1: the kernel stopped the process (SIGSTOP); user space sends SIGCONT */
	__u8 tracked; /* 1: the file is tracked (already decided, hooked) */
	__u8 pad;
	__s32 fd; /* WATCH_MAP: the mapped fd */
	__u32 pid;
	__u32 parent; /* WATCH_FORK */
	struct watch_file_key file;
	char name[WATCH_NAME_LEN]; /* the file's dentry name */
};

#endif /* ECAP_WATCH_ABI_H */
