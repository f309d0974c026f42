/* Emission of captured plaintext: one call's bytes as struct tls_data_event records of at most
 * TLS_CHUNK bytes each (bpf_loop, so any size fits), with the process and the connection's
 * 4-tuple. Each record is reserved in the ring buffer itself in the smallest of a few size
 * classes that holds its chunk, so no buffer is shared between tasks and a 1 KiB write does not
 * take 32 KiB of ring. Shared by every TLS module (include after common.bpf.h). */
#ifndef ECAP_TLS_EMIT_BPF_H
#define ECAP_TLS_EMIT_BPF_H

#include "tls_abi.h"

struct tls_scratch_rec {
	struct tls_data_event hdr;
	__u8 data[TLS_CHUNK];
};

/* Perf-buffer kernels only (no ring buffer to reserve in). */
ECAP_SCRATCH_MAP(tls_scratch, struct tls_scratch_rec);

/* Argument of tls_emit_chunk: the header every chunk repeats, and where the bytes are. */
struct tls_chunk_ctx {
	struct tls_data_event hdr;
	void *regs;
	__u64 src;
	__u64 len;
};

/* Copies `n` (<= cls) bytes at `src` into a record of class `cls` and sends it. */
static __always_inline long tls_emit_class(struct tls_chunk_ctx *c, __u64 off, __u64 n,
					   const __u64 cls)
{
	struct tls_data_event *r;

	r = ecap_reserve(&tls_scratch, sizeof(*r) + cls);
	if (!r)
		return 1;
	__builtin_memcpy(r, &c->hdr, sizeof(*r));
	r->offset = off;
	r->data_len = n;
	asm volatile("" : "+r"(n));
	if (n > cls || bpf_probe_read_user((__u8 *)(r + 1), n, (const void *)(c->src + off))) {
		ecap_count(ECAP_CNT_READ_FAILED);
		ecap_discard(r);
		return 0;
	}
	ecap_submit(c->regs, r, sizeof(*r) + (use_ringbuf ? cls : n));
	return 0;
}

static long tls_emit_chunk(__u32 index, void *arg)
{
	struct tls_chunk_ctx *c = arg;
	__u64 off = (__u64)index * TLS_CHUNK;
	__u64 n;

	if (off >= c->len)
		return 1;
	n = c->len - off;
	if (n > TLS_CHUNK)
		n = TLS_CHUNK;
	if (!use_ringbuf)
		return tls_emit_class(c, off, n, TLS_CHUNK);
	if (n <= 256)
		return tls_emit_class(c, off, n, 256);
	if (n <= 1024)
		return tls_emit_class(c, off, n, 1024);
	if (n <= 4096)
		return tls_emit_class(c, off, n, 4096);
	if (n <= 16384)
		return tls_emit_class(c, off, n, 16384);
	return tls_emit_class(c, off, n, TLS_CHUNK);
}

/* Fills the task part and the connection part of a record header. */
static __always_inline void tls_fill_header(struct tls_data_event *h, __u64 id, __u64 conn,
					    __s32 fd, __u8 kind)
{
	__builtin_memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->fd = fd;
	h->conn_id = conn;
	ECAP_FILL_TASK(h, id);
	ecap_fill_tuple(fd, &h->tuple);
}

/* Emits the `len` bytes at user address `buf` that a call on connection object `conn` (socket
 * `fd`, -1 when unknown) moved in `direction`. */
static __always_inline void tls_emit_record(void *ctx, __u64 id, __u64 conn, __s32 fd, __u64 buf,
					    __u64 len, __u8 direction, __u8 api)
{
	struct tls_chunk_ctx c;

	tls_fill_header(&c.hdr, id, conn, fd, TLS_RECORD_DATA);
	c.hdr.direction = direction;
	c.hdr.api = api;
	c.hdr.total_len = len;
	c.regs = ctx;
	c.src = buf;
	c.len = len;
	bpf_loop((len + TLS_CHUNK - 1) / TLS_CHUNK, tls_emit_chunk, &c, 0);
}

#endif /* ECAP_TLS_EMIT_BPF_H */
