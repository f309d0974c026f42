// Test fixture for test_fleet.py: librdkafka's mock cluster (3 brokers on 127.0.0.1) with one
// topic, and a consumer that writes every message it reads to a file, one line each:
//   <partition> <offset> <key hex> <value hex> <header>=<hex>,<header>=<hex>,...
// Commands on stdin: "down" / "up" (every broker), "quit". Replies "ok <cmd>" on stdout.
// Usage: kafka_mock TOPIC PARTITIONS OUTFILE   (prints "bootstrap <servers>" first)
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROKERS 3

static volatile int stop_flag;
static FILE *out;

static void hex(FILE *f, const void *p, size_t n) {
  const unsigned char *b = p;
  if (n == 0) fputc('-', f);
  for (size_t i = 0; i < n; i++) fprintf(f, "%02x", b[i]);
}

static void *consume(void *arg) {
  rd_kafka_t *c = arg;
  while (!stop_flag) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
    if (m == NULL) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      fprintf(out, "%d %lld ", m->partition, (long long)m->offset);
      hex(out, m->key, m->key_len);
      fputc(' ', out);
      hex(out, m->payload, m->len);
      fputc(' ', out);
      rd_kafka_headers_t *h = NULL;
      int any = 0;
      if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &len) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
          fprintf(out, "%s%s=", any ? "," : "", name);
          hex(out, val, len);
          any = 1;
        }
      }
      if (!any) fputc('-', out);
      fputc('\n', out);
      fflush(out);
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v) {
  char err[256];
  if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "kafka_mock: %s=%s: %s\n", k, v, err);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: kafka_mock TOPIC PARTITIONS OUTFILE\n");
    return 2;
  }
  const char *topic = argv[1];
  int partitions = atoi(argv[2]);
  out = fopen(argv[3], "w");
  if (out == NULL || partitions < 1) return 2;
  char err[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (owner == NULL) {
    fprintf(stderr, "kafka_mock: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(owner, BROKERS);
  if (mc == NULL) {
    fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
    return 1;
  }
  if (rd_kafka_mock_topic_create(mc, topic, partitions, BROKERS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "kafka_mock: cannot create topic %s\n", topic);
    return 1;
  }
  const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);

  rd_kafka_conf_t *cc = rd_kafka_conf_new();
  if (set(cc, "bootstrap.servers", bootstraps) || set(cc, "group.id", "kafka_mock") ||
      set(cc, "enable.auto.commit", "false") || set(cc, "reconnect.backoff.max.ms", "200") ||
      set(cc, "fetch.wait.max.ms", "50"))
    return 1;
  rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
  if (c == NULL) {
    fprintf(stderr, "kafka_mock: consumer: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; p++)
    rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  pthread_t th;
  pthread_create(&th, NULL, consume, c);

  printf("bootstrap %s\n", bootstraps);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    line[strcspn(line, "\n")] = 0;
    if (strcmp(line, "down") == 0 || strcmp(line, "up") == 0) {
      for (int b = 1; b <= BROKERS; b++) {
        if (line[0] == 'd')
          rd_kafka_mock_broker_set_down(mc, b);
        else
          rd_kafka_mock_broker_set_up(mc, b);
      }
    } else if (strcmp(line, "quit") == 0) {
      break;
    }
    printf("ok %s\n", line);
    fflush(stdout);
  }
  stop_flag = 1;
  pthread_join(th, NULL);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(owner);
  fclose(out);
  return 0;
}
