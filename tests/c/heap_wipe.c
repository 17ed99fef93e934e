/*
 * heap_wipe.c: after enos_string_free() and enos_client_free(), no copy of
 * a token stays in the process's writable memory.
 *
 * Gets a token through every path that hands one out (raw Get, raw
 * Refresh, the managed token, signed headers), frees every string and the
 * client, then scans every private writable mapping (heap, anonymous
 * memory, the library's data) for the tokens. The program keeps the tokens
 * only masked (XOR 0x5a), so its own copies are not found. Prints
 * "copies N" and exits 0 when N is 0.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

#define MASK 0x5a

struct masked {
  unsigned char bytes[512];
  size_t length;
};

static const char *env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return value;
}

/* Keeps `token` masked, then wipes and frees the library's string. */
static void keep_masked(char *token, struct masked *kept) {
  kept->length = strlen(token);
  if (kept->length > sizeof kept->bytes) {
    kept->length = sizeof kept->bytes;
  }
  for (size_t i = 0; i < kept->length; i++) {
    kept->bytes[i] = (unsigned char)token[i] ^ MASK;
  }
  enos_string_free(token);
}

/* How often `kept` occurs in [start, end). */
static long occurrences(const unsigned char *start, const unsigned char *end,
                        const struct masked *kept) {
  long found = 0;
  const unsigned char first = kept->bytes[0] ^ MASK;
  for (const unsigned char *p = start; p + kept->length <= end; p++) {
    if (*p != first) {
      continue;
    }
    size_t i = 1;
    while (i < kept->length && p[i] == (kept->bytes[i] ^ MASK)) {
      i++;
    }
    found += i == kept->length;
  }
  return found;
}

static long scan(const struct masked *tokens, int count) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) {
    perror("/proc/self/maps");
    exit(2);
  }
  char line[512];
  long found = 0;
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end;
    char permissions[8] = {0};
    if (sscanf(line, "%lx-%lx %7s", &start, &end, permissions) != 3) {
      continue;
    }
    /* Writable private memory, but not this thread's stack (our locals). */
    if (strncmp(permissions, "rw-p", 4) != 0 || strstr(line, "[stack]") != NULL ||
        strstr(line, "[vvar") != NULL) {
      continue;
    }
    for (int t = 0; t < count; t++) {
      long here = occurrences((const unsigned char *)start, (const unsigned char *)end, &tokens[t]);
      if (here > 0) {
        fprintf(stderr, "token %d: %ld in %s", t, here, line);
      }
      found += here;
    }
  }
  fclose(maps);
  return found;
}

int main(void) {
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(env("ENOS_GATEWAY_URL"), env("ENOS_APP_KEY"),
                              env("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_builder_set_proxy(builder, "") != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "setup: %s\n", enos_last_error_message());
    return 2;
  }
  struct masked tokens[2];
  char *token = NULL;
  char *refreshed = NULL;
  char *managed = NULL;
  char *headers = NULL;
  if (enos_client_get_token(client, &token, NULL) != ENOS_OK ||
      enos_client_refresh_token(client, token, &refreshed, NULL) != ENOS_OK) {
    fprintf(stderr, "get/refresh: %s\n", enos_last_error_message());
    return 2;
  }
  keep_masked(token, &tokens[0]);
  keep_masked(refreshed, &tokens[1]);
  for (int i = 0; i < 3; i++) {
    if (enos_client_access_token(client, &managed) != ENOS_OK ||
        enos_client_auth_headers(client, "a=1", (const uint8_t *)"{}", 2, &headers) != ENOS_OK) {
      fprintf(stderr, "managed: %s\n", enos_last_error_message());
      return 2;
    }
    enos_string_free(managed);
    enos_string_free(headers);
  }
  enos_client_free(client);
  long copies = scan(tokens, 2);
  printf("copies %ld\n", copies);
  return copies == 0 ? 0 : 1;
}
