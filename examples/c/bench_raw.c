/*
 * bench_raw.c: the floor for a Get over plain HTTP, for the benchmark
 * (examples/bench_vs_libcurl.rs builds and runs it).
 *
 * No HTTP library: one TCP connection kept alive, and per call the same work
 * as bench_libcurl.c (a fresh millisecond timestamp, SHA-256 for the
 * encryption, the JSON body with snprintf, the token cut out with strstr
 * and copied) with exactly one write and one read. It checks nothing a real
 * client must (chunked bodies, answers split across reads, timeouts): it is
 * a floor, not a client.
 *
 * With "api" at the end it is the floor for a signed API call instead: a
 * Get for the token, then calls alternating between a GET with a query and
 * a POST with a JSON body (as examples/bench_call_cost.rs's), each with a
 * fresh timestamp, its SHA-256 signature and the three apim-* headers.
 *
 * usage: bench_raw HOST PORT APP_KEY APP_SECRET CALLS [api]
 * prints: "<calls> calls, <ns> ns per call, <ns> ns CPU per call" (after 200
 * warm-up calls; CPU is user + system time from getrusage)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* User + system CPU time of this process so far. */
static long long cpu_ns(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return ((long long)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000LL +
         ((long long)usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;
}

static long long last_timestamp;

static long long next_timestamp_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  long long ms = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
  last_timestamp = ms > last_timestamp ? ms : last_timestamp + 1;
  return last_timestamp;
}

/* One Get on `fd`: returns a malloc'd token, or NULL. */
static char *get_token(int fd, const char *host, const char *port, const char *key,
                       const char *secret) {
  char text[512], hex[65], body[512], request[1024], answer[16384];
  unsigned char digest[32];
  unsigned int digest_length = 0;
  long long timestamp = next_timestamp_ms();
  int n = snprintf(text, sizeof text, "%s%lld%s", key, timestamp, secret);
  EVP_Digest(text, (size_t)n, digest, &digest_length, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", digest[i]);
  int body_length =
      snprintf(body, sizeof body, "{\"appKey\":\"%s\",\"encryption\":\"%s\",\"timestamp\":%lld}",
               key, hex, timestamp);
  int length = snprintf(request, sizeof request,
                        "POST /apim-token-service/v2.0/token/get HTTP/1.1\r\nHost: %s:%s\r\n"
                        "Content-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\n"
                        "\r\n%s",
                        host, port, body_length, body);
  if (write(fd, request, (size_t)length) != length) return NULL;
  ssize_t got = read(fd, answer, sizeof answer - 1);
  if (got <= 0) return NULL;
  answer[got] = '\0';
  const char *start = strstr(answer, "\"accessToken\":\"");
  if (strncmp(answer, "HTTP/1.1 200", 12) != 0 || start == NULL) return NULL;
  start += strlen("\"accessToken\":\"");
  const char *end = strchr(start, '"');
  return end ? strndup(start, (size_t)(end - start)) : NULL;
}

static void sha256_hex(const char *text, size_t length, char hex[65]) {
  unsigned char digest[32];
  unsigned int digest_length = 0;
  EVP_Digest(text, length, digest, &digest_length, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", digest[i]);
}

/* One signed API call on `fd`, a GET (even i) or a POST with a JSON body:
 * 0 on HTTP 200. The query is already in sorted order. */
static int api_call(int fd, const char *host, const char *port, const char *token,
                    const char *secret, long i) {
  static const char *body = "{\"assetIds\":[\"a1\",\"a2\"]}";
  char text[1024], hex[65], request[2048], answer[16384];
  int post = i % 2 == 1;
  const char *path = post ? "/connect-service/v2.1/devices" : "/asset-service/v2.1/assets";
  const char *query = post ? "action=get&orgId=o1" : "orgId=o1&pageSize=10";
  const char *params = post ? "actiongetorgIdo1" : "orgIdo1pageSize10";
  long long timestamp = next_timestamp_ms();
  int n = snprintf(text, sizeof text, "%s%s%s%lld%s", token, params, post ? body : "", timestamp,
                   secret);
  sha256_hex(text, (size_t)n, hex);
  int length;
  if (post) {
    length = snprintf(request, sizeof request,
                      "POST %s?%s HTTP/1.1\r\nHost: %s:%s\r\napim-accesstoken: %s\r\n"
                      "apim-signature: %s\r\napim-timestamp: %lld\r\n"
                      "Content-Type: application/json;charset=UTF-8\r\nContent-Length: %zu\r\n"
                      "\r\n%s",
                      path, query, host, port, token, hex, timestamp, strlen(body), body);
  } else {
    length = snprintf(request, sizeof request,
                      "GET %s?%s HTTP/1.1\r\nHost: %s:%s\r\napim-accesstoken: %s\r\n"
                      "apim-signature: %s\r\napim-timestamp: %lld\r\n\r\n",
                      path, query, host, port, token, hex, timestamp);
  }
  if (write(fd, request, (size_t)length) != length) return -1;
  ssize_t got = read(fd, answer, sizeof answer - 1);
  return got > 12 && strncmp(answer, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 6 && !(argc == 7 && strcmp(argv[6], "api") == 0)) {
    fprintf(stderr, "usage: %s HOST PORT APP_KEY APP_SECRET CALLS [api]\n", argv[0]);
    return 2;
  }
  int api = argc == 7;
  const char *host = argv[1], *port = argv[2], *key = argv[3], *secret = argv[4];
  long calls = strtol(argv[5], NULL, 10);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
  int one = 1;
  if (fd < 0 || inet_pton(AF_INET, host, &address.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    perror("connect");
    return 1;
  }
  if (api) {
    char *token = get_token(fd, host, port, key, secret);
    if (token == NULL) {
      fprintf(stderr, "the Get for the token failed\n");
      return 1;
    }
    for (long i = 0; i < 200; i++) {
      if (api_call(fd, host, port, token, secret, i) != 0) {
        fprintf(stderr, "warm-up call failed\n");
        return 1;
      }
    }
    long long started = now_ns(), cpu_started = cpu_ns();
    for (long i = 0; i < calls; i++) {
      if (api_call(fd, host, port, token, secret, i) != 0) {
        fprintf(stderr, "call %ld failed\n", i);
        return 1;
      }
    }
    long long elapsed = now_ns() - started, cpu = cpu_ns() - cpu_started;
    printf("%ld calls, %lld ns per call, %lld ns CPU per call\n", calls, elapsed / calls,
           cpu / calls);
    free(token);
    close(fd);
    return 0;
  }
  for (int i = 0; i < 200; i++) {
    char *token = get_token(fd, host, port, key, secret);
    if (token == NULL) {
      fprintf(stderr, "warm-up call failed\n");
      return 1;
    }
    free(token);
  }
  long long started = now_ns(), cpu_started = cpu_ns();
  for (long i = 0; i < calls; i++) {
    char *token = get_token(fd, host, port, key, secret);
    if (token == NULL) {
      fprintf(stderr, "call %ld failed\n", i);
      return 1;
    }
    free(token);
  }
  long long elapsed = now_ns() - started, cpu = cpu_ns() - cpu_started;
  printf("%ld calls, %lld ns per call, %lld ns CPU per call\n", calls, elapsed / calls,
         cpu / calls);
  close(fd);
  return 0;
}
