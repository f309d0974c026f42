/* TLS traffic for tests/e2e/test_hot_path.py, over socketpairs (client and server SSL objects in
 * one process, each end in its own thread). Modes:
 *   threads CERT KEY NTHREADS SECONDS INTERVAL_MS SIZE  writers with distinct patterns
 *   partial CERT KEY SIZE PARTIAL(0|1)                 a non-blocking write retried/continued
 *   block CERT KEY NTHREADS                            threads parked inside SSL_read
 * Reports JSON lines on stdout. Build: cc -O2 -pthread hot_path_prog.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL_CTX *server_ctx, *client_ctx;

static void die(const char *what)
{
	fprintf(stderr, "hot_path_prog: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static void make_ctxs(const char *cert, const char *key)
{
	server_ctx = SSL_CTX_new(TLS_server_method());
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!server_ctx || !client_ctx)
		die("SSL_CTX_new");
	if (SSL_CTX_use_certificate_file(server_ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(server_ctx, key, SSL_FILETYPE_PEM) != 1)
		die("certificate");
	/* No session tickets: after the handshake no record is pending that a read would take. */
	SSL_CTX_set_num_tickets(server_ctx, 0);
}

struct pair {
	int fds[2];
	SSL *server, *client;
	int index;
	long size, count;
	int seconds, interval_ms;
	pid_t writer_tid;
	long written;
};

static void *server_side(void *arg)
{
	struct pair *p = arg;
	char buf[16384];

	p->server = SSL_new(server_ctx);
	SSL_set_fd(p->server, p->fds[0]);
	if (SSL_accept(p->server) != 1)
		die("SSL_accept");
	for (;;) {
		int n = SSL_read(p->server, buf, sizeof(buf));
		if (n <= 0)
			break;
	}
	return NULL;
}

static void connect_client(struct pair *p)
{
	p->client = SSL_new(client_ctx);
	SSL_set_fd(p->client, p->fds[1]);
	if (SSL_connect(p->client) != 1)
		die("SSL_connect");
}

static void pattern(char *buf, long size, int t, long i)
{
	int n = snprintf(buf, size, "P%dT%dM%ld|", getpid(), t, i);
	for (long k = n; k < size; k++)
		buf[k] = 'a' + (char)((t * 7 + i * 3 + k) % 26);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *writer(void *arg)
{
	struct pair *p = arg;
	char *buf = malloc(p->size);
	double end;

	p->writer_tid = gettid();
	connect_client(p);
	end = now_s() + p->seconds;
	while (now_s() < end) {
		pattern(buf, p->size, p->index, p->count);
		if (SSL_write(p->client, buf, (int)p->size) != (int)p->size)
			die("SSL_write");
		p->count++;
		usleep(p->interval_ms * 1000);
	}
	free(buf);
	SSL_shutdown(p->client);
	shutdown(p->fds[1], SHUT_WR);
	return NULL;
}

static int run_threads(int nthreads, int seconds, int interval_ms, long size)
{
	struct pair *pairs = calloc(nthreads, sizeof(*pairs));
	pthread_t *srv = calloc(nthreads, sizeof(*srv)), *cli = calloc(nthreads, sizeof(*cli));

	for (int t = 0; t < nthreads; t++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[t].fds))
			die("socketpair");
		pairs[t].index = t;
		pairs[t].size = size;
		pairs[t].seconds = seconds;
		pairs[t].interval_ms = interval_ms;
		pthread_create(&srv[t], NULL, server_side, &pairs[t]);
		pthread_create(&cli[t], NULL, writer, &pairs[t]);
	}
	for (int t = 0; t < nthreads; t++) {
		pthread_join(cli[t], NULL);
		pthread_join(srv[t], NULL);
		printf("{\"pid\": %d, \"tid\": %d, \"t\": %d, \"count\": %ld}\n", getpid(),
		       pairs[t].writer_tid, t, pairs[t].count);
	}
	fflush(stdout);
	return 0;
}

struct slow_reader {
	struct pair *p;
	long total;
};

/* Reads `total` bytes slowly, after a pause: the writer's non-blocking socket fills up. */
static void *slow_read(void *arg)
{
	struct slow_reader *r = arg;
	char buf[4096];
	long got = 0;

	r->p->server = SSL_new(server_ctx);
	SSL_set_fd(r->p->server, r->p->fds[0]);
	if (SSL_accept(r->p->server) != 1)
		die("SSL_accept");
	usleep(300 * 1000);
	while (got < r->total) {
		int n = SSL_read(r->p->server, buf, sizeof(buf));
		if (n <= 0)
			die("slow SSL_read");
		got += n;
		if (got % (64 * 1024) < (long)sizeof(buf))
			usleep(2000);
	}
	return NULL;
}

static int run_partial(long size, int partial)
{
	struct pair p = {0};
	struct slow_reader r = {&p, size};
	pthread_t srv;
	char *buf = malloc(size);
	long off = 0, calls = 0, retries = 0;
	/* Partial mode: room for whole records, so that calls return part of the buffer. */
	int sndbuf = partial ? 65536 : 4096;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p.fds))
		die("socketpair");
	setsockopt(p.fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	pthread_create(&srv, NULL, slow_read, &r);
	connect_client(&p);
	if (partial)
		SSL_set_mode(p.client, SSL_MODE_ENABLE_PARTIAL_WRITE);
	fcntl(p.fds[1], F_SETFL, fcntl(p.fds[1], F_GETFL) | O_NONBLOCK);
	for (long k = 0; k < size; k++)
		buf[k] = (char)('A' + (k * 31 + k / 26) % 26);
	memcpy(buf, "PARTIAL-WRITE-START|", 20);
	while (off < size) {
		int n = SSL_write(p.client, buf + off, (int)(size - off));

		calls++;
		if (n > 0) {
			off += n;
			continue;
		}
		if (SSL_get_error(p.client, n) != SSL_ERROR_WANT_WRITE)
			die("SSL_write failed");
		retries++;
		struct pollfd pfd = {p.fds[1], POLLOUT, 0};
		poll(&pfd, 1, 1000);
	}
	pthread_join(srv, NULL);
	printf("{\"tid\": %d, \"calls\": %ld, \"retries\": %ld, \"bytes\": %ld}\n", gettid(), calls,
	       retries, off);
	fflush(stdout);
	return 0;
}

static int run_block(int nthreads)
{
	struct pair *pairs = calloc(nthreads, sizeof(*pairs));
	pthread_t *srv = calloc(nthreads, sizeof(*srv));
	char line[64];

	printf("{\"event\": \"ready\", \"pid\": %d}\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (int t = 0; t < nthreads; t++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[t].fds))
			die("socketpair");
		pthread_create(&srv[t], NULL, server_side, &pairs[t]);
		connect_client(&pairs[t]);
	}
	usleep(300 * 1000); /* the servers are inside SSL_read now */
	printf("{\"event\": \"blocked\", \"threads\": %d}\n", nthreads);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	pthread_cancel(srv[0]); /* read(2) inside SSL_read is a cancellation point */
	pthread_join(srv[0], NULL);
	printf("{\"event\": \"cancelled\"}\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		die("usage: threads|partial|block CERT KEY ...");
	make_ctxs(argv[2], argv[3]);
	if (!strcmp(argv[1], "threads") && argc == 8)
		return run_threads(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), atol(argv[7]));
	if (!strcmp(argv[1], "partial") && argc == 6)
		return run_partial(atol(argv[4]), atoi(argv[5]));
	if (!strcmp(argv[1], "block") && argc == 5)
		return run_block(atoi(argv[4]));
	die("bad arguments");
	return 2;
}
