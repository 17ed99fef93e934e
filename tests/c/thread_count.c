/*
 * thread_count.c: proves that a client call on a pooled connection spawns no
 * thread and looks no name up.
 *
 * It interposes pthread_create (the executable's definition wins over libc's
 * for every library it loads, libenos_token.so included) and counts calls. The
 * gateway URL uses a host name (localhost) and explicit timeouts: ureq's own
 * resolver would then spawn a thread for every lookup, on every call.
 *
 * Prints "first call: threads N, lookups N" and "pooled calls: threads N,
 * lookups N" and exits 0, or 1 on a failed call.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "enos_token.h"

typedef int (*create_function)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static atomic_long threads_created;

int pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*start)(void *),
                   void *argument) {
  create_function real = (create_function)dlsym(RTLD_NEXT, "pthread_create");
  atomic_fetch_add(&threads_created, 1);
  return real(thread, attributes, start, argument);
}

static int get(const enos_client *client) {
  char *token = NULL;
  enos_status status = enos_client_get_token(client, &token, NULL);
  if (status != ENOS_OK) {
    const char *message = enos_last_error_message();
    fprintf(stderr, "%s: %s\n", enos_status_name((int32_t)status), message ? message : "");
  }
  enos_string_free(token);
  return status == ENOS_OK;
}

int main(void) {
  const char *gateway = getenv("ENOS_GATEWAY_URL");
  const char *app_key = getenv("ENOS_APP_KEY");
  const char *app_secret = getenv("ENOS_APP_SECRET");
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (gateway == NULL || app_key == NULL || app_secret == NULL ||
      enos_client_builder_new(gateway, app_key, app_secret, &builder) != ENOS_OK ||
      enos_client_builder_set_timeout_ms(builder, 5000, 10000) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  enos_client_counters counters = {.struct_size = sizeof counters};
  if (!get(client)) return 1;
  enos_client_get_counters(client, &counters);
  long threads_after_first = atomic_load(&threads_created);
  unsigned long long lookups_after_first = (unsigned long long)counters.dns_lookups;
  printf("first call: threads %ld, lookups %llu\n", threads_after_first, lookups_after_first);

  for (int i = 0; i < 200; i++) {
    if (!get(client)) return 1;
  }
  enos_client_get_counters(client, &counters);
  printf("pooled calls: threads %ld, lookups %llu\n", atomic_load(&threads_created) - threads_after_first,
         (unsigned long long)counters.dns_lookups - lookups_after_first);
  enos_client_free(client);
  return 0;
}
