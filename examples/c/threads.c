/*
 * threads.c: many threads asking one client for the token, in a loop.
 *
 * The way a multi-threaded program uses the library: one enos_client shared
 * by every thread, enos_client_access_token() before each API call. The
 * first call gets a token; the others are served from the cache, with no
 * request and no lock; refreshes happen once, for everyone.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET, and
 * optionally ENOS_THREADS (default 8) and ENOS_CALLS (default 10000 per thread).
 *
 * Prints the calls made, the distinct tokens seen by thread 0 and the
 * client's counters; exits 0 when every call succeeded.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

struct worker {
  const enos_client *client;
  long calls;
  long failures;
  long token_changes;
};

static void *work(void *argument) {
  struct worker *worker = argument;
  char *previous = NULL;
  for (long i = 0; i < worker->calls; i++) {
    char *token = NULL;
    enos_status status = enos_client_access_token(worker->client, &token);
    if (status != ENOS_OK) {
      /* The message belongs to this thread: read it here, right away. */
      const char *message = enos_last_error_message();
      fprintf(stderr, "access token failed: %s: %s\n", enos_status_name((int32_t)status),
              message != NULL ? message : "");
      worker->failures++;
      continue;
    }
    if (previous == NULL || strcmp(previous, token) != 0) {
      worker->token_changes++;
    }
    enos_string_free(previous);
    previous = token;
  }
  enos_string_free(previous);
  return NULL;
}

static long env_long(const char *name, long fallback) {
  const char *value = getenv(name);
  return (value != NULL && value[0] != '\0') ? strtol(value, NULL, 10) : fallback;
}

int main(void) {
  const char *gateway = getenv("ENOS_GATEWAY_URL");
  const char *app_key = getenv("ENOS_APP_KEY");
  const char *app_secret = getenv("ENOS_APP_SECRET");
  long threads = env_long("ENOS_THREADS", 8);
  long calls = env_long("ENOS_CALLS", 10000);
  if (gateway == NULL || app_key == NULL || app_secret == NULL || threads < 1 || threads > 256) {
    fprintf(stderr, "set ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET (ENOS_THREADS 1-256)\n");
    return 2;
  }

  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_status status = enos_client_builder_new(gateway, app_key, app_secret, &builder);
  if (status == ENOS_OK) {
    status = enos_client_build(builder, &client);
  }
  if (status != ENOS_OK) {
    const char *message = enos_last_error_message();
    fprintf(stderr, "client: %s: %s\n", enos_status_name((int32_t)status), message ? message : "");
    return 1;
  }

  pthread_t ids[256];
  struct worker workers[256];
  for (long t = 0; t < threads; t++) {
    workers[t] = (struct worker){client, calls, 0, 0};
    if (pthread_create(&ids[t], NULL, work, &workers[t]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  long failures = 0;
  for (long t = 0; t < threads; t++) {
    pthread_join(ids[t], NULL);
    failures += workers[t].failures;
  }

  enos_client_counters counters = {.struct_size = sizeof counters};
  if (enos_client_get_counters(client, &counters) != ENOS_OK) {
    return 1;
  }
  printf("calls: %ld in %ld threads, failures: %ld\n", threads * calls, threads, failures);
  printf("thread 0 saw %ld distinct token(s)\n", workers[0].token_changes);
  printf("counters: gets=%llu refreshes=%llu retries=%llu failures=%llu waits=%llu cache_hits=%llu\n",
         (unsigned long long)counters.get_requests, (unsigned long long)counters.refresh_requests,
         (unsigned long long)counters.retries, (unsigned long long)counters.failures,
         (unsigned long long)counters.waits, (unsigned long long)counters.cache_hits);
  enos_client_free(client);
  return failures == 0 ? 0 : 1;
}
