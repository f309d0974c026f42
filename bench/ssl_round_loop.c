// ssl_round_loop: one TLS connection over a socketpair inside one process; a writer thread does N
// SSL_write calls of 1 KiB and a reader thread N SSL_read calls of the same messages. Prints the
// wall time per round (one write + one read), so that probes on both functions are measured.
//
// Usage: ssl_round_loop [N] [warmup]
// Output: "pid <pid>", "rounds <N>", "ns_per_round <float>" (one per line).
#define _GNU_SOURCE
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 1024

static SSL *server, *client;
static long rounds, warmup;

static void die(const char *what) {
  fprintf(stderr, "ssl_round_loop: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *accept_side(void *arg) {
  (void)arg;
  if (SSL_accept(server) != 1) die("SSL_accept");
  return NULL;
}

static void *reader(void *arg) {
  char buf[CHUNK];
  (void)arg;
  for (long i = 0; i < warmup + rounds; i++) {
    int got = 0;
    while (got < CHUNK) {
      int n = SSL_read(server, buf + got, CHUNK - got);
      if (n <= 0) die("SSL_read");
      got += n;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  rounds = argc > 1 ? atol(argv[1]) : 20000;
  warmup = argc > 2 ? atol(argv[2]) : 500;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) die("socketpair");

  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  if (!pkey || !cert) die("key");
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, pkey);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  if (!X509_sign(cert, pkey, EVP_sha256())) die("X509_sign");
  SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
  if (SSL_CTX_use_certificate(sctx, cert) != 1 || SSL_CTX_use_PrivateKey(sctx, pkey) != 1)
    die("certificate");
  SSL_CTX_set_num_tickets(sctx, 0);
  server = SSL_new(sctx);
  client = SSL_new(cctx);
  SSL_set_fd(server, fds[0]);
  SSL_set_fd(client, fds[1]);
  pthread_t acc, rd;
  pthread_create(&acc, NULL, accept_side, NULL);
  if (SSL_connect(client) != 1) die("SSL_connect");
  pthread_join(acc, NULL);

  char msg[CHUNK];
  for (int i = 0; i < CHUNK; i++) msg[i] = 'a' + i % 26;
  pthread_create(&rd, NULL, reader, NULL);
  for (long i = 0; i < warmup; i++)
    if (SSL_write(client, msg, CHUNK) != CHUNK) die("SSL_write");
  double t0 = now_ns();
  for (long i = 0; i < rounds; i++)
    if (SSL_write(client, msg, CHUNK) != CHUNK) die("SSL_write");
  pthread_join(rd, NULL);
  double t1 = now_ns();
  printf("pid %d\nrounds %ld\nns_per_round %.1f\n", getpid(), rounds, (t1 - t0) / rounds);
  return 0;
}
