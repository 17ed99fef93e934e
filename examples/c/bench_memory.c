/*
 * bench_memory.c: resident memory of a C program using enos-token.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * 1. 10,000 Get calls (network): peak RSS (VmHWM) after them.
 * 2. 1,000,000 cached enos_client_access_token calls: RSS every 200,000.
 * 3. 50,000 more Get calls: RSS every 10,000.
 * Flat means the last sample is within 64 KiB of the first of its loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

static long status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long value = -1;
  size_t length = strlen(field);
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, field, length) == 0) value = strtol(line + length + 1, NULL, 10);
  }
  if (f != NULL) fclose(f);
  return value;
}

static int get(const enos_client *client) {
  char *token = NULL;
  enos_status status = enos_client_get_token(client, &token, NULL);
  enos_string_free(token);
  return status == ENOS_OK;
}

static int cached(const enos_client *client) {
  char *token = NULL;
  enos_status status = enos_client_access_token(client, &token);
  enos_string_free(token);
  return status == ENOS_OK;
}

static int loop(const char *name, const enos_client *client, int (*call)(const enos_client *), long calls,
                long every) {
  long first = -1, last = -1;
  printf("%s:", name);
  for (long i = 1; i <= calls; i++) {
    if (!call(client)) {
      fprintf(stderr, "\ncall %ld failed: %s\n", i, enos_last_error_message());
      return 0;
    }
    if (i % every == 0) {
      last = status_kib("VmRSS:");
      if (first < 0) first = last;
      printf(" %ld", last);
    }
  }
  printf(" KiB -> %s\n", last - first <= 64 ? "flat" : "GROWING");
  return 1;
}

int main(void) {
  const char *url = getenv("ENOS_GATEWAY_URL"), *key = getenv("ENOS_APP_KEY"), *secret = getenv("ENOS_APP_SECRET");
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (url == NULL || key == NULL || secret == NULL || enos_client_builder_new(url, key, secret, &builder) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  for (long i = 0; i < 10000; i++) {
    if (!get(client)) {
      fprintf(stderr, "call failed: %s\n", enos_last_error_message());
      return 1;
    }
  }
  printf("after 10,000 Get calls: peak RSS %ld KiB, RSS %ld KiB\n", status_kib("VmHWM:"), status_kib("VmRSS:"));
  if (!loop("1,000,000 cached calls, RSS", client, cached, 1000000, 200000)) return 1;
  if (!loop("50,000 Get calls, RSS", client, get, 50000, 10000)) return 1;
  printf("peak RSS overall: %ld KiB\n", status_kib("VmHWM:"));
  enos_client_free(client);
  return 0;
}
