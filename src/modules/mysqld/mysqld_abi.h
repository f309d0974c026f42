/* Records of the mysqld module (bpf/mysqld.bpf.c), shared with C++. */
#ifndef ECAP_MYSQLD_ABI_H
#define ECAP_MYSQLD_ABI_H

#include "ecap_abi.h"

/* Which dispatch_command signature is hooked (the attach cookie of the entry program). */
enum mysqld_abi {
	/* MySQL <= 5.6, MariaDB: dispatch_command(enum_server_command, THD *, char *packet,
	 * uint packet_length, ...) */
	MYSQLD_ABI_LEGACY = 0,
	/* MySQL 5.7, 8.x: dispatch_command(THD *, const COM_DATA *, enum_server_command) */
	MYSQLD_ABI_COM_DATA = 1,
};

enum mysqld_record_kind {
	/* A chunk of the command's packet (without the command byte), copied on entry. */
	MYSQLD_RECORD_DATA = 0,
	/* dispatch_command returned: the command's metadata and outcome; data is the error message
	 * the server sent, if any. Ends the command of this thread. */
	MYSQLD_RECORD_END = 1,
};

enum mysqld_flags {
	MYSQLD_F_ERROR = 1,   /* an error packet was sent during the command (sql_errno set) */
	MYSQLD_F_STMT_ID = 2, /* stmt_id is the id the server answered to a COM_STMT_PREPARE */
};

/* Commands whose packet starts with a 4-byte statement id (the same numbers in MySQL and
 * MariaDB). */
#define MYSQLD_COM_QUERY 3
#define MYSQLD_COM_STMT_PREPARE 22
#define MYSQLD_COM_STMT_EXECUTE 23
#define MYSQLD_COM_STMT_SEND_LONG_DATA 24
#define MYSQLD_COM_STMT_CLOSE 25
#define MYSQLD_COM_STMT_RESET 26
#define MYSQLD_COM_STMT_FETCH 28
#define MYSQLD_COM_STMT_BULK_EXECUTE 250

struct mysqld_event {
	__u64 timestamp_ns; /* CLOCK_MONOTONIC when dispatch_command was entered */
	__u64 thd;          /* the THD* of the connection */
	__u64 total_len;    /* DATA: packet length; END: the same */
	__u64 offset;       /* DATA: where data[] starts in the packet */
	__u64 duration_ns;  /* END */
	__s64 retval;       /* END: dispatch_command's return value */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 data_len;
	__u32 command;   /* enum_server_command */
	__u32 sql_errno; /* END, with MYSQLD_F_ERROR */
	__u32 stmt_id;   /* END, with MYSQLD_F_STMT_ID */
	__u8 kind;       /* enum mysqld_record_kind */
	__u8 flags;      /* enum mysqld_flags */
	__u8 pad[2];
	char comm[ECAP_TASK_COMM_LEN];
	__u64 cgroup_id; /* cgroup v2 id of the task (bpf_get_current_cgroup_id) */
	/* followed by data_len bytes */
};

#define MYSQLD_RECORD_MAX 32768
#define MYSQLD_CHUNK (MYSQLD_RECORD_MAX - sizeof(struct mysqld_event))
/* Packets are copied up to this size (MariaDB's max_allowed_packet is 1 GiB at most); the
 * original length is always reported. */
#define MYSQLD_CAPTURE_MAX (16u << 20)
/* Of the statement commands only the leading statement id is copied. */
#define MYSQLD_STMT_COPY 4
#define MYSQLD_ERRMSG_MAX 512

#endif /* ECAP_MYSQLD_ABI_H */
