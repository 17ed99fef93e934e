/*
 * bench_libcurl_api.c: an API call the way a program that keeps libcurl
 * makes it, for the benchmark (examples/bench_vs_libcurl.rs builds and runs
 * it against enos_client_request).
 *
 * Per call: enos_client_auth_headers() for the query (and the JSON body of
 * a POST): the managed token, cached, and a signature; the three header
 * lines split into a curl_slist, one call on a reused easy handle
 * (keep-alive), the body collected. Calls alternate between a GET with a
 * query and a POST with a JSON body, as examples/bench_call_cost.rs's do.
 *
 * usage: bench_libcurl_api GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS
 * prints: "<calls> calls, <ns> ns per call, <ns> ns CPU per call" (after 200
 * warm-up calls; CPU is user + system time from getrusage)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include "enos_token.h"

#define GET_PATH "/asset-service/v2.1/assets"
#define GET_QUERY "orgId=o1&pageSize=10"
#define POST_PATH "/connect-service/v2.1/devices"
#define POST_QUERY "action=get&orgId=o1"
#define POST_BODY "{\"assetIds\":[\"a1\",\"a2\"]}"

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

/* User + system CPU time of this process so far. */
static long long cpu_ns(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return ((long long)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000LL +
         ((long long)usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000LL;
}

static char get_url[1024], post_url[1024];

/* One signed call, a GET (even i) or a POST with a JSON body: 0 on HTTP 200. */
static int api_call(enos_client *client, CURL *curl, struct buffer *buffer, long i) {
  int post = i % 2 == 1;
  char *headers = NULL;
  const char *body = post ? POST_BODY : NULL;
  size_t body_length = post ? strlen(POST_BODY) : 0;
  if (enos_client_auth_headers(client, post ? POST_QUERY : GET_QUERY, (const uint8_t *)body,
                               body_length, &headers) != ENOS_OK)
    return -1;
  struct curl_slist *list = NULL;
  for (char *line = strtok(headers, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
    list = curl_slist_append(list, line);
  }
  if (post) {
    list = curl_slist_append(list, "Content-Type: application/json;charset=UTF-8");
    curl_easy_setopt(curl, CURLOPT_URL, post_url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, POST_BODY);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body_length);
  } else {
    curl_easy_setopt(curl, CURLOPT_URL, get_url);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
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
  snprintf(get_url, sizeof get_url, "%s%s?%s", argv[1], GET_PATH, GET_QUERY);
  snprintf(post_url, sizeof post_url, "%s%s?%s", argv[1], POST_PATH, POST_QUERY);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *curl = curl_easy_init();
  struct buffer buffer = {.length = 0};
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  if (strcmp(argv[2], "-") != 0) curl_easy_setopt(curl, CURLOPT_CAINFO, argv[2]);

  for (int i = 0; i < 200; i++) {
    if (api_call(client, curl, &buffer, i) != 0) {
      fprintf(stderr, "warm-up call failed: %s\n", buffer.data);
      return 1;
    }
  }
  long long started = now_ns(), cpu_started = cpu_ns();
  for (long i = 0; i < calls; i++) {
    if (api_call(client, curl, &buffer, i) != 0) {
      fprintf(stderr, "call %ld failed\n", i);
      return 1;
    }
  }
  long long elapsed = now_ns() - started, cpu = cpu_ns() - cpu_started;
  printf("%ld calls, %lld ns per call, %lld ns CPU per call\n", calls, elapsed / calls,
         cpu / calls);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  enos_client_free(client);
  return 0;
}
