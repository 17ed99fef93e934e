/*
 * bench_libcurl.c: the hand-written alternative to enos-token, for the
 * benchmark (examples/bench_vs_libcurl.rs builds and runs it).
 *
 * What a careful C programmer writes with libcurl and OpenSSL: one easy
 * handle reused for every call (keep-alive), the encryption computed with
 * SHA-256 per call from a fresh millisecond timestamp, the JSON body built
 * with snprintf, the token cut out of the answer with strstr and copied.
 *
 * usage: bench_libcurl GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS
 * prints: "<calls> calls, <ns> ns per call" (after 200 warm-up calls)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

struct buffer {
  char data[16384];
  size_t length;
};

static size_t collect(char *data, size_t size, size_t count, void *user) {
  struct buffer *buffer = user;
  size_t n = size * count;
  if (buffer->length + n >= sizeof buffer->data) return 0; /* too large: abort the transfer */
  memcpy(buffer->data + buffer->length, data, n);
  buffer->length += n;
  buffer->data[buffer->length] = '\0';
  return n;
}

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long last_timestamp;

static long long next_timestamp_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  long long ms = (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
  last_timestamp = ms > last_timestamp ? ms : last_timestamp + 1;
  return last_timestamp;
}

/* One Get: returns a malloc'd token, or NULL. */
static char *get_token(CURL *curl, struct buffer *buffer, const char *key, const char *secret) {
  char text[512], hex[65], body[512];
  unsigned char digest[32];
  unsigned int digest_length = 0;
  long long timestamp = next_timestamp_ms();
  int n = snprintf(text, sizeof text, "%s%lld%s", key, timestamp, secret);
  EVP_Digest(text, (size_t)n, digest, &digest_length, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", digest[i]);
  snprintf(body, sizeof body, "{\"appKey\":\"%s\",\"encryption\":\"%s\",\"timestamp\":%lld}", key, hex,
           timestamp);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  buffer->length = 0;
  if (curl_easy_perform(curl) != CURLE_OK) return NULL;
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  const char *start = strstr(buffer->data, "\"accessToken\":\"");
  if (status != 200 || start == NULL) return NULL;
  start += strlen("\"accessToken\":\"");
  const char *end = strchr(start, '"');
  return end ? strndup(start, (size_t)(end - start)) : NULL;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS\n", argv[0]);
    return 2;
  }
  const char *key = argv[3], *secret = argv[4];
  long calls = strtol(argv[5], NULL, 10);
  char url[1024];
  snprintf(url, sizeof url, "%s/apim-token-service/v2.0/token/get", argv[1]);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *curl = curl_easy_init();
  struct buffer buffer = {.length = 0};
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json;charset=UTF-8");
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (strcmp(argv[2], "-") != 0) curl_easy_setopt(curl, CURLOPT_CAINFO, argv[2]);

  for (int i = 0; i < 200; i++) {
    char *token = get_token(curl, &buffer, key, secret);
    if (token == NULL) {
      fprintf(stderr, "warm-up call failed: %s\n", buffer.data);
      return 1;
    }
    free(token);
  }
  long long started = now_ns();
  for (long i = 0; i < calls; i++) {
    char *token = get_token(curl, &buffer, key, secret);
    if (token == NULL) {
      fprintf(stderr, "call %ld failed\n", i);
      return 1;
    }
    free(token);
  }
  long long elapsed = now_ns() - started;
  printf("%ld calls, %lld ns per call\n", calls, elapsed / calls);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  return 0;
}
