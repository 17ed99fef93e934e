/*
 * bench_libcurl_api.c: an API call the way a program that keeps libcurl
 * makes it, for the benchmark (examples/bench_vs_libcurl.rs builds and runs
 * it against enos_client_request).
 *
 * Per call: enos_client_auth_headers() for the query (the managed token,
 * cached, and a signature), the three header lines split into a curl_slist,
 * one GET on a reused easy handle (keep-alive), the body collected.
 *
 * usage: bench_libcurl_api GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS
 * prints: "<calls> calls, <ns> ns per call" (after 200 warm-up calls)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "enos_token.h"

#define API_PATH "/api/assets"
#define API_QUERY "orgId=o1&pageSize=10"

struct buffer {
  char data[16384];
  size_t length;
};

static size_t collect(char *data, size_t size, size_t count, void *user) {
  struct buffer *buffer = user;
  size_t n = size * count;
  if (buffer->length + n >= sizeof buffer->data) return 0;
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

/* One signed GET: 0 on HTTP 200. */
static int api_call(enos_client *client, CURL *curl, struct buffer *buffer) {
  char *headers = NULL;
  if (enos_client_auth_headers(client, API_QUERY, NULL, 0, &headers) != ENOS_OK) return -1;
  struct curl_slist *list = NULL;
  for (char *line = strtok(headers, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
    list = curl_slist_append(list, line);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  buffer->length = 0;
  CURLcode result = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  enos_string_free(headers);
  return result == CURLE_OK && status == 200 ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS\n", argv[0]);
    return 2;
  }
  long calls = strtol(argv[5], NULL, 10);
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(argv[1], argv[3], argv[4], &builder) != ENOS_OK ||
      enos_client_builder_set_proxy(builder, "") != ENOS_OK ||
      (strcmp(argv[2], "-") != 0 && enos_client_builder_set_ca_file(builder, argv[2]) != ENOS_OK) ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "client: %s\n", enos_last_error_message());
    return 1;
  }
  char url[1024];
  snprintf(url, sizeof url, "%s%s?%s", argv[1], API_PATH, API_QUERY);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *curl = curl_easy_init();
  struct buffer buffer = {.length = 0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  if (strcmp(argv[2], "-") != 0) curl_easy_setopt(curl, CURLOPT_CAINFO, argv[2]);

  for (int i = 0; i < 200; i++) {
    if (api_call(client, curl, &buffer) != 0) {
      fprintf(stderr, "warm-up call failed: %s\n", buffer.data);
      return 1;
    }
  }
  long long started = now_ns();
  for (long i = 0; i < calls; i++) {
    if (api_call(client, curl, &buffer) != 0) {
      fprintf(stderr, "call %ld failed\n", i);
      return 1;
    }
  }
  long long elapsed = now_ns() - started;
  printf("%ld calls, %lld ns per call\n", calls, elapsed / calls);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  enos_client_free(client);
  return 0;
}
