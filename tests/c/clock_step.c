/*
 * clock_step.c: request timestamps after the wall clock was stepped a day
 * forward and then corrected.
 *
 * The program defines clock_gettime() (the library's calls resolve to it)
 * and adds `wall_offset_ms` to the wall clocks. It reads the timestamp the
 * library puts on requests from the apim-timestamp header of
 * enos_client_auth_headers(), with the clock a day fast, then corrected.
 * Prints "fast: N ms" (how far ahead the requests were while the clock was
 * fast) and "ahead: N ms" for the corrected clock and exits 0, or 1 on a
 * failed call. It also sends two Gets while the clock is fast and one
 * after it was corrected: the test reads their timestamps from the fake.
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enos_token.h"

static long long wall_offset_ms;

typedef int (*clock_function)(clockid_t, struct timespec *);

int clock_gettime(clockid_t clock, struct timespec *time) {
  static clock_function real;
  if (real == NULL) {
    real = (clock_function)dlsym(RTLD_NEXT, "clock_gettime");
  }
  int result = real(clock, time);
  if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
    long long ns = (long long)time->tv_nsec + (wall_offset_ms % 1000) * 1000000LL;
    time->tv_sec += (time_t)(wall_offset_ms / 1000) + (time_t)(ns / 1000000000LL);
    time->tv_nsec = (long)(ns % 1000000000LL);
  }
  return result;
}

static long long real_now_ms(void) {
  long long saved = wall_offset_ms;
  wall_offset_ms = 0;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  wall_offset_ms = saved;
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The apim-timestamp of fresh auth headers, or -1. */
static long long request_timestamp(const enos_client *client) {
  char *headers = NULL;
  if (enos_client_auth_headers(client, "", NULL, 0, &headers) != ENOS_OK) {
    fprintf(stderr, "enos_client_auth_headers: %s\n", enos_last_error_message());
    return -1;
  }
  const char *at = strstr(headers, "apim-timestamp: ");
  long long timestamp = at ? atoll(at + strlen("apim-timestamp: ")) : -1;
  enos_string_free(headers);
  return timestamp;
}

/* One Get Access Token (always a request): 0, or -1. */
static int get(const enos_client *client) {
  char *token = NULL;
  if (enos_client_get_token(client, &token, NULL) != ENOS_OK) {
    fprintf(stderr, "enos_client_get_token: %s\n", enos_last_error_message());
    return -1;
  }
  enos_string_free(token);
  return 0;
}

int main(void) {
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "client: %s\n", enos_last_error_message());
    return 1;
  }
  wall_offset_ms = 86400000LL; /* a day fast */
  long long fast = 0;
  for (int i = 0; i < 5; i++) {
    fast = request_timestamp(client);
    if (fast < 0) {
      return 1;
    }
  }
  printf("fast: %lld ms\n", fast - real_now_ms());
  for (int i = 0; i < 2; i++) {
    if (get(client) != 0) {
      return 1;
    }
  }
  wall_offset_ms = 0; /* corrected */
  /* An API call first: its sequence notices the correction; the Gets' must too. */
  long long timestamp = request_timestamp(client);
  long long now = real_now_ms();
  if (get(client) != 0) {
    return 1;
  }
  enos_client_free(client);
  if (timestamp < 0) {
    return 1;
  }
  printf("ahead: %lld ms\n", timestamp - now);
  return 0;
}
