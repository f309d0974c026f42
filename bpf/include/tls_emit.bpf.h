/* Emission of captured plaintext: one call's bytes as struct tls_data_event records of at
 * most TLS_CHUNK bytes each (bpf_loop, so any size fits), with the process and the
 * connection's 4-tuple. Shared by every TLS module (include after common.bpf.h). */
#ifndef ECAP_TLS_EMIT_BPF_H
#define ECAP_TLS_EMIT_BPF_H

#include "tls_abi.h"

struct tls_scratch_rec {
	struct tls_data_event hdr;
	__u8 data[TLS_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_scratch_rec);
} tls_scratch SEC(".maps");

ECAP_DEFINE_CHUNK_COPY(tls_emit_chunk, tls_scratch, TLS_CHUNK)

/* Emits the `len` bytes at user address `buf` that a call on connection object `conn` (socket
 * `fd`, -1 when unknown) moved in `direction`. */
static __always_inline void tls_emit_record(void *ctx, __u64 id, __u64 conn, __s32 fd, __u64 buf,
					    __u64 len, __u8 direction, __u8 api)
{
	struct tls_scratch_rec *s;
	struct ecap_chunk_ctx ec;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!s)
		return;
	__builtin_memset(&s->hdr, 0, sizeof(s->hdr));
	s->hdr.kind = TLS_RECORD_DATA;
	s->hdr.direction = direction;
	s->hdr.api = api;
	s->hdr.fd = fd;
	s->hdr.timestamp_ns = bpf_ktime_get_ns();
	s->hdr.conn_id = conn;
	s->hdr.total_len = len;
	s->hdr.pid = id >> 32;
	s->hdr.tid = (__u32)id;
	s->hdr.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(s->hdr.comm, sizeof(s->hdr.comm));
	ecap_fill_tuple(fd, &s->hdr.tuple);
	ec.regs = ctx;
	ec.src = buf;
	ec.len = len;
	bpf_loop((len + TLS_CHUNK - 1) / TLS_CHUNK, tls_emit_chunk, &ec, 0);
}

#endif /* ECAP_TLS_EMIT_BPF_H */
