/*
 * fork_safety.c: a host program that forks after using the library.
 *
 *   fork_safety oneshot ROUNDS   one-shot Gets: the parent for app A, each
 *                                child for app B, at the same moment, on the
 *                                gateway whose pooled connection the child
 *                                inherited. Every answer must be its own app's.
 *   fork_safety client ROUNDS    one client (background refresh on, CA file
 *                                from ENOS_TEST_CA_FILE for HTTPS) used by parent
 *                                and child at once; the child frees it.
 *   fork_safety inflight         forks while another thread's Get is in
 *                                flight (the gateway was told to delay it):
 *                                the child must get a token of its own.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET (app A),
 * ENOS_APP_KEY_B, ENOS_APP_SECRET_B (app B), ENOS_TEST_CA_FILE (optional).
 * Exits 0 when every check held; prints what failed otherwise. A child that
 * hangs is killed by alarm() and counts as a failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enos_token.h"

#define CALLS_PER_ROUND 40

static const char *env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return value;
}

static void report(const char *who, const char *what, enos_status status) {
  const char *message = enos_last_error_message();
  fprintf(stderr, "%s: %s failed: %s: %s\n", who, what, enos_status_name((int32_t)status),
          message ? message : "");
}

/* One-shot Get for (key, secret); the token, or NULL after reporting. */
static char *oneshot_get(const char *who, const char *key, const char *secret) {
  char *token = NULL;
  enos_status status = enos_get_access_token(env("ENOS_GATEWAY_URL"), key, secret, &token, NULL);
  if (status != ENOS_OK) {
    report(who, "enos_get_access_token", status);
  }
  return token;
}

/* CALLS_PER_ROUND Gets that must all return `expected` (or, when `expected`
 * is NULL, one token that is never `forbidden`). Returns 1 when they did. */
static int oneshot_round(const char *who, const char *key, const char *secret,
                         const char *expected, const char *forbidden) {
  char *first = NULL;
  int ok = 1;
  for (int i = 0; i < CALLS_PER_ROUND && ok; i++) {
    char *token = oneshot_get(who, key, secret);
    if (token == NULL) {
      ok = 0;
    } else if (expected != NULL && strcmp(token, expected) != 0) {
      fprintf(stderr, "%s: got another app's token\n", who);
      ok = 0;
    } else if (forbidden != NULL && strcmp(token, forbidden) == 0) {
      fprintf(stderr, "%s: got the other app's token\n", who);
      ok = 0;
    } else if (first != NULL && strcmp(token, first) != 0) {
      fprintf(stderr, "%s: the app's token changed\n", who);
      ok = 0;
    }
    if (first == NULL) {
      first = token;
    } else {
      enos_string_free(token);
    }
  }
  enos_string_free(first);
  return ok;
}

static int wait_child(pid_t child) {
  int status = 0;
  if (waitpid(child, &status, 0) != child) {
    return 0;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child failed (status %d)\n", status);
    return 0;
  }
  return 1;
}

static int run_oneshot(int rounds) {
  const char *key_a = env("ENOS_APP_KEY"), *secret_a = env("ENOS_APP_SECRET");
  const char *key_b = env("ENOS_APP_KEY_B"), *secret_b = env("ENOS_APP_SECRET_B");
  char *token_a = oneshot_get("parent", key_a, secret_a);
  if (token_a == NULL) {
    return 0;
  }
  int ok = 1;
  for (int round = 0; round < rounds && ok; round++) {
    pid_t child = fork();
    if (child == 0) {
      alarm(20);
      _exit(oneshot_round("child", key_b, secret_b, NULL, token_a) ? 0 : 1);
    }
    ok = oneshot_round("parent", key_a, secret_a, token_a, NULL);
    ok = wait_child(child) && ok;
  }
  enos_string_free(token_a);
  return ok;
}

static enos_client *build_client(int background) {
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_status status = enos_client_builder_new(env("ENOS_GATEWAY_URL"), env("ENOS_APP_KEY"),
                                               env("ENOS_APP_SECRET"), &builder);
  const char *ca_file = getenv("ENOS_TEST_CA_FILE");
  if (status == ENOS_OK && ca_file != NULL) {
    status = enos_client_builder_set_ca_file(builder, ca_file);
  }
  if (status == ENOS_OK) {
    status = enos_client_builder_set_timeout_ms(builder, 5000, 10000);
  }
  if (status == ENOS_OK) {
    status = enos_client_builder_set_background_refresh(builder, background);
  }
  if (status != ENOS_OK) {
    report("parent", "building the client", status);
    enos_client_builder_free(builder);
    return NULL;
  }
  status = enos_client_build(builder, &client);
  if (status != ENOS_OK) {
    report("parent", "enos_client_build", status);
  }
  return client;
}

/* CALLS_PER_ROUND raw Gets on `client`, all returning `expected`. */
static int client_round(const char *who, const enos_client *client, const char *expected) {
  for (int i = 0; i < CALLS_PER_ROUND; i++) {
    char *token = NULL;
    enos_status status = enos_client_get_token(client, &token, NULL);
    if (status != ENOS_OK) {
      report(who, "enos_client_get_token", status);
      return 0;
    }
    int same = strcmp(token, expected) == 0;
    enos_string_free(token);
    if (!same) {
      fprintf(stderr, "%s: got a token that is not the app's\n", who);
      return 0;
    }
  }
  return 1;
}

static int run_client(int rounds) {
  enos_client *client = build_client(1);
  char *token = NULL;
  if (client == NULL) {
    return 0;
  }
  enos_status status = enos_client_access_token(client, &token);
  if (status != ENOS_OK) {
    report("parent", "enos_client_access_token", status);
    enos_client_free(client);
    return 0;
  }
  int ok = 1;
  for (int round = 0; round < rounds && ok; round++) {
    pid_t child = fork();
    if (child == 0) {
      alarm(20);
      int child_ok = client_round("child", client, token);
      /* Must neither hang on the parent's background thread nor touch the
       * parent's connections. */
      enos_client_free(client);
      _exit(child_ok ? 0 : 1);
    }
    ok = client_round("parent", client, token);
    ok = wait_child(child) && ok;
  }
  enos_string_free(token);
  enos_client_free(client);
  return ok;
}

static void *get_in_flight(void *client) {
  char *token = NULL;
  enos_status status = enos_client_access_token(client, &token);
  if (status != ENOS_OK) {
    report("parent thread", "enos_client_access_token", status);
  }
  enos_string_free(token);
  return (void *)(status == ENOS_OK ? "ok" : NULL);
}

static int run_inflight(void) {
  enos_client *client = build_client(0);
  if (client == NULL) {
    return 0;
  }
  pthread_t thread;
  pthread_create(&thread, NULL, get_in_flight, client);
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL); /* the gateway delays the thread's Get */
  pid_t child = fork();
  if (child == 0) {
    alarm(20);
    char *token = NULL;
    enos_status status = enos_client_access_token(client, &token);
    if (status != ENOS_OK) {
      report("child", "enos_client_access_token", status);
    }
    enos_string_free(token);
    _exit(status == ENOS_OK ? 0 : 1);
  }
  int ok = wait_child(child);
  void *thread_result = NULL;
  pthread_join(thread, &thread_result);
  enos_client_free(client);
  return ok && thread_result != NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  int rounds = argc > 2 ? atoi(argv[2]) : 10;
  int ok;
  if (strcmp(mode, "oneshot") == 0) {
    ok = run_oneshot(rounds);
  } else if (strcmp(mode, "client") == 0) {
    ok = run_client(rounds);
  } else if (strcmp(mode, "inflight") == 0) {
    ok = run_inflight();
  } else {
    fprintf(stderr, "usage: fork_safety oneshot|client|inflight [ROUNDS]\n");
    return 2;
  }
  puts(ok ? "fork safety: ok" : "fork safety: FAILED");
  return ok ? 0 : 1;
}
