/*
 * bench_calls_in_flight.c: many API calls in flight at once, the library's
 * way (enos_client_send_async, at most CONCURRENCY running) against
 * libcurl's multi interface with as many transfers at once, each signed with
 * enos_client_auth_headers as a program that keeps libcurl would. For
 * examples/bench_calls_in_flight.rs, which builds and runs it against nginx.
 *
 * usage: bench_calls_in_flight enos|curl GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS CONCURRENCY
 * prints: "<calls> calls, <wall> ms, <cpu> ms CPU" of a second round of CALLS
 * calls: the first (a warm-up) opens the connections and, for the library,
 * starts its worker threads, which both keep; CPU is getrusage's user plus
 * system time of the whole process, every thread included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <curl/curl.h>

#include "enos_token.h"

#define API_PATH "/api/assets"
#define API_QUERY "orgId=o1&pageSize=10"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double cpu_ms(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

static void fail(const char *what) {
  fprintf(stderr, "%s: %s\n", what, enos_last_error_message());
  exit(1);
}

/* `calls` calls started at once; the library runs `concurrency` of them at a time. */
static void enos_round(enos_client *client, const enos_request *request, int calls) {
  enos_call **started = calloc((size_t)calls, sizeof *started);
  for (int i = 0; i < calls; i++) {
    if (enos_client_send_async(client, request, NULL, NULL, &started[i]) != ENOS_OK) fail("send_async");
  }
  for (int i = 0; i < calls; i++) {
    enos_response *response = NULL;
    if (enos_call_wait(started[i], -1, &response) != ENOS_OK) fail("call");
    if (enos_response_status(response) != 200) fail("status");
    enos_response_free(response);
    enos_call_free(started[i]);
  }
  free(started);
}

static int run_enos(enos_client *client, int calls, int concurrency, double *wall, double *cpu) {
  enos_request *request = NULL;
  if (enos_request_new("GET", API_PATH "?" API_QUERY, &request) != ENOS_OK) fail("request");
  enos_round(client, request, calls); /* warm-up: connections and workers */
  double wall_start = now_ms(), cpu_start = cpu_ms();
  enos_round(client, request, calls);
  *wall = now_ms() - wall_start;
  *cpu = cpu_ms() - cpu_start;
  enos_request_free(request);
  return 0;
}

/* One libcurl transfer slot: an easy handle and its signed headers. */
struct slot {
  CURL *easy;
  struct curl_slist *headers;
};

static size_t discard(char *data, size_t size, size_t count, void *user) {
  (void)data;
  (void)user;
  return size * count;
}

/* Signs and (re)starts the slot's transfer. */
static void start(CURLM *multi, enos_client *client, struct slot *slot) {
  char *lines = NULL;
  if (enos_client_auth_headers(client, API_QUERY, NULL, 0, &lines) != ENOS_OK) fail("auth_headers");
  curl_slist_free_all(slot->headers);
  slot->headers = NULL;
  for (char *line = strtok(lines, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
    slot->headers = curl_slist_append(slot->headers, line);
  }
  enos_string_free(lines);
  curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, slot->headers);
  curl_multi_add_handle(multi, slot->easy);
}

/* `calls` transfers, `concurrency` at a time, each slot starting the next when done. */
static void curl_round(CURLM *multi, enos_client *client, struct slot *slots, int calls, int concurrency) {
  int started = 0, finished = 0;
  for (; started < concurrency && started < calls; started++) start(multi, client, &slots[started]);
  while (finished < calls) {
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read(multi, &left)) != NULL) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL *easy = message->easy_handle;
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      if (message->data.result != CURLE_OK || status != 200) {
        fprintf(stderr, "curl: %s, HTTP %ld\n", curl_easy_strerror(message->data.result), status);
        exit(1);
      }
      curl_multi_remove_handle(multi, easy);
      finished++;
      struct slot *slot = NULL;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot);
      if (started < calls) {
        start(multi, client, slot);
        started++;
      }
    }
    if (finished < calls) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
}

static int run_curl(enos_client *client, const char *url, const char *ca_file, int calls, int concurrency,
                    double *wall, double *cpu) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)concurrency);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
  char full[1024];
  snprintf(full, sizeof full, "%s%s?%s", url, API_PATH, API_QUERY);
  struct slot *slots = calloc((size_t)concurrency, sizeof *slots);
  for (int i = 0; i < concurrency; i++) {
    slots[i].easy = curl_easy_init();
    curl_easy_setopt(slots[i].easy, CURLOPT_URL, full);
    curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, (char *)&slots[i]);
    curl_easy_setopt(slots[i].easy, CURLOPT_PROXY, "");
    if (ca_file != NULL) curl_easy_setopt(slots[i].easy, CURLOPT_CAINFO, ca_file);
  }
  curl_round(multi, client, slots, calls, concurrency); /* warm-up: the connections */
  double wall_start = now_ms(), cpu_start = cpu_ms();
  curl_round(multi, client, slots, calls, concurrency);
  *wall = now_ms() - wall_start;
  *cpu = cpu_ms() - cpu_start;
  for (int i = 0; i < concurrency; i++) {
    curl_easy_cleanup(slots[i].easy);
    curl_slist_free_all(slots[i].headers);
  }
  free(slots);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr,
            "usage: %s enos|curl GATEWAY_URL CA_FILE|- APP_KEY APP_SECRET CALLS CONCURRENCY\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1], *url = argv[2];
  const char *ca_file = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
  int calls = atoi(argv[6]), concurrency = atoi(argv[7]);
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(url, argv[4], argv[5], &builder) != ENOS_OK) fail("builder");
  enos_client_builder_set_proxy(builder, "");
  if (ca_file != NULL && enos_client_builder_set_ca_file(builder, ca_file) != ENOS_OK) fail("ca_file");
  if (enos_client_builder_set_max_concurrent_calls(builder, (uint32_t)concurrency) != ENOS_OK) fail("concurrency");
  if (enos_client_build(builder, &client) != ENOS_OK) fail("build");
  char *token = NULL;
  if (enos_client_access_token(client, &token) != ENOS_OK) fail("token");
  enos_string_free(token);
  double wall = 0, cpu = 0;
  if (strcmp(mode, "enos") == 0) {
    run_enos(client, calls, concurrency, &wall, &cpu);
  } else {
    run_curl(client, url, ca_file, calls, concurrency, &wall, &cpu);
  }
  printf("%d calls, %.1f ms, %.1f ms CPU\n", calls, wall, cpu);
  enos_client_free(client);
  return 0;
}
