// ssl_write_loop: measures the cost of one SSL_write() of 1 KiB, in nanoseconds per call.
//
// One process, two threads, loopback TCP:
//   - the server thread accepts one connection, completes the TLS handshake with a self-signed
//     P-256 certificate generated in memory, then drains the socket with plain read(), so that
//     no SSL_read() runs while we measure;
//   - the main thread (client) completes the handshake, does a short warm-up, then N SSL_write()
//     calls of 1 KiB each, timed with CLOCK_MONOTONIC.
//
// Usage: ssl_write_loop [N] [warmup]
// Output (stdout, one "key value" per line):
//   pid <pid>
//   calls <N>
//   ns_per_call <float>
//
// The library must be the shared system libssl (the benchmark compares this loop with and without
// uprobes on its SSL_write).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CHUNK 1024

static void die(const char *what) {
  fprintf(stderr, "ssl_write_loop: %s failed: %s\n", what, strerror(errno));
  ERR_print_errors_fp(stderr);
  exit(1);
}

static void die_ssl(const char *what) {
  fprintf(stderr, "ssl_write_loop: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

// A self-signed certificate for CN=localhost with a fresh P-256 key, valid for one day.
static void make_cert(EVP_PKEY **pkey_out, X509 **cert_out) {
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  if (!pkey) die_ssl("EVP_EC_gen");
  X509 *cert = X509_new();
  if (!cert) die_ssl("X509_new");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                             0);
  X509_set_issuer_name(cert, name);
  if (!X509_sign(cert, pkey, EVP_sha256())) die_ssl("X509_sign");
  *pkey_out = pkey;
  *cert_out = cert;
}

struct server_arg {
  int listen_fd;
  SSL_CTX *ctx;
  uint64_t drained;
};

static void *server_main(void *p) {
  struct server_arg *arg = p;
  int fd = accept(arg->listen_fd, NULL, NULL);
  if (fd < 0) die("accept");
  SSL *ssl = SSL_new(arg->ctx);
  if (!ssl) die_ssl("SSL_new (server)");
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) die_ssl("SSL_accept");
  // From here on only the kernel socket is read: the client's records are discarded unread.
  static char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) break;
      die("read");
    }
    arg->drained += (uint64_t)n;
  }
  // Not SSL_shutdown: the peer is gone and we never read its close_notify through TLS.
  SSL_free(ssl);
  close(fd);
  return NULL;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_all(SSL *ssl, const char *buf, int len) {
  int n = SSL_write(ssl, buf, len);
  if (n != len) die_ssl("SSL_write");
}

int main(int argc, char **argv) {
  long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
  long warmup = argc > 2 ? strtol(argv[2], NULL, 10) : 200;
  if (calls <= 0 || warmup < 0) {
    fprintf(stderr, "usage: %s [calls>0] [warmup>=0]\n", argv[0]);
    return 2;
  }
  printf("pid %d\n", (int)getpid());
  fflush(stdout);

  EVP_PKEY *pkey = NULL;
  X509 *cert = NULL;
  make_cert(&pkey, &cert);

  SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
  if (!sctx || !cctx) die_ssl("SSL_CTX_new");
  if (SSL_CTX_use_certificate(sctx, cert) != 1) die_ssl("SSL_CTX_use_certificate");
  if (SSL_CTX_use_PrivateKey(sctx, pkey) != 1) die_ssl("SSL_CTX_use_PrivateKey");
  // No session tickets: nothing but the handshake travels server -> client.
  SSL_CTX_set_num_tickets(sctx, 0);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) die("socket");
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 1) < 0) die("listen");
  socklen_t alen = sizeof addr;
  if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) die("getsockname");

  struct server_arg sarg = {.listen_fd = lfd, .ctx = sctx, .drained = 0};
  pthread_t server;
  if (pthread_create(&server, NULL, server_main, &sarg) != 0) die("pthread_create");

  int cfd = socket(AF_INET, SOCK_STREAM, 0);
  if (cfd < 0) die("socket");
  if (connect(cfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  int one = 1;
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL *ssl = SSL_new(cctx);
  if (!ssl) die_ssl("SSL_new (client)");
  SSL_set_fd(ssl, cfd);
  if (SSL_connect(ssl) != 1) die_ssl("SSL_connect");

  // Printable payload, so that a capturing tool takes its text path.
  char buf[CHUNK];
  for (int i = 0; i < CHUNK; i++) buf[i] = (char)('a' + i % 26);
  buf[CHUNK - 1] = '\n';

  for (long i = 0; i < warmup; i++) write_all(ssl, buf, CHUNK);

  uint64_t t0 = now_ns();
  for (long i = 0; i < calls; i++) write_all(ssl, buf, CHUNK);
  uint64_t t1 = now_ns();

  shutdown(cfd, SHUT_WR);
  pthread_join(server, NULL);
  uint64_t expected_min = (uint64_t)(calls + warmup) * CHUNK;
  if (sarg.drained < expected_min) {
    fprintf(stderr, "ssl_write_loop: server drained %llu bytes, expected at least %llu\n",
            (unsigned long long)sarg.drained, (unsigned long long)expected_min);
    return 1;
  }

  printf("calls %ld\n", calls);
  printf("ns_per_call %.1f\n", (double)(t1 - t0) / (double)calls);
  fflush(stdout);

  SSL_free(ssl);
  close(cfd);
  close(lfd);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  X509_free(cert);
  EVP_PKEY_free(pkey);
  return 0;
}
