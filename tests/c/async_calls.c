/*
 * async_calls.c: calls that never block, as a C host uses them, run by
 * tests/c_files.rs against the fake gateway, plainly, under valgrind and
 * built with AddressSanitizer.
 *
 *   async_calls [--valgrind]   (the time bounds do not apply, and the fork
 *                              part is left out: a child forked with threads
 *                              in flight keeps what they held, which valgrind
 *                              counts as the child's leak)
 *
 * 200 calls to an API that answers after 100 ms, started at once; the
 * descriptor readable exactly when a call is done; each callback once, off
 * the caller's thread; a cancel during a 10 s answer; a queued call
 * cancelled (the test then checks the fake never saw it); freeing a running
 * call; fork() with a call in flight.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * Prints "async calls: ok" and exits 0, or says what failed and exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enos_token.h"

#define CALLS 200

static int failures;
static int timing = 1;

static void check(int condition, const char *what) {
  if (!condition) {
    const char *message = enos_last_error_message();
    fprintf(stderr, "FAILED: %s (last error: %s)\n", what, message ? message : "none");
    failures++;
  }
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static int readable(int fd, int wait_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, wait_ms) == 1;
}

static enos_client *new_client(unsigned max_concurrent) {
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_builder_set_proxy(builder, "") != ENOS_OK ||
      (max_concurrent && enos_client_builder_set_max_concurrent_calls(builder, max_concurrent) != ENOS_OK) ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "client: %s\n", enos_last_error_message());
    exit(1);
  }
  return client;
}

static enos_request *new_request(const char *method, const char *path) {
  enos_request *request = NULL;
  if (enos_request_new(method, path, &request) != ENOS_OK) {
    fprintf(stderr, "request: %s\n", enos_last_error_message());
    exit(1);
  }
  return request;
}

static atomic_int callbacks;
static atomic_int callbacks_on_caller_thread;
static pthread_t caller;

static void on_done(void *user_data, enos_call *call) {
  atomic_fetch_add(&callbacks, 1);
  if (pthread_equal(pthread_self(), caller)) atomic_fetch_add(&callbacks_on_caller_thread, 1);
  check(enos_call_done(call), "done in its callback");
  check(user_data == (void *)&callbacks, "the callback's user_data");
}

static void many_at_once(enos_client *client) {
  enos_request *request = new_request("GET", "/fake/v1/echo?delayMs=100");
  enos_call *calls[CALLS];
  double started = now_ms();
  for (int i = 0; i < CALLS; i++) {
    check(enos_client_send_async(client, request, on_done, &callbacks, &calls[i]) == ENOS_OK,
          "send_async");
  }
  enos_request_free(request); /* the calls hold what they need */
  check(!timing || now_ms() - started < 100, "200 calls started at once");
  for (int i = 0; i < CALLS; i++) {
    enos_response *response = NULL;
    check(enos_call_wait(calls[i], -1, &response) == ENOS_OK, "wait");
    check(enos_response_status(response) == 200, "HTTP 200");
    check(readable(enos_call_fd(calls[i]), 0), "readable once done");
    enos_response_free(response);
    check(enos_call_wait(calls[i], 0, &response) == ENOS_ERR_INVALID_ARGUMENT,
          "the response is handed out once");
  }
  double took = now_ms() - started;
  check(!timing || took < 1000, "200 calls of 100 ms within a second");
  for (int spins = 0; atomic_load(&callbacks) < CALLS && spins < 1000; spins++) sleep_ms(1);
  check(atomic_load(&callbacks) == CALLS, "each callback once");
  check(atomic_load(&callbacks_on_caller_thread) == 0, "no callback on the caller's thread");
  for (int i = 0; i < CALLS; i++) enos_call_free(calls[i]);
}

static void descriptor_and_cancel(enos_client *client) {
  enos_request *slow = new_request("GET", "/fake/v1/echo?delayMs=10000");
  enos_call *call = NULL;
  check(enos_client_send_async(client, slow, NULL, NULL, &call) == ENOS_OK, "a slow call");
  check(!readable(enos_call_fd(call), 100), "not readable while it runs");
  check(!enos_call_done(call), "not done while it runs");
  enos_response *response = NULL;
  check(enos_call_wait(call, 50, &response) == ENOS_ERR_TIMEOUT && response == NULL,
        "a wait that times out");
  double cancelled = now_ms();
  check(enos_call_cancel(call) == ENOS_OK, "cancel");
  check(enos_call_wait(call, -1, &response) == ENOS_ERR_CANCELLED, "cancelled");
  check(!timing || now_ms() - cancelled < 50, "done within 50 ms of the cancel");
  check(readable(enos_call_fd(call), 0), "readable once cancelled");
  enos_call_free(call);
  check(enos_client_request(client, "GET", "/fake/v1/echo", NULL, NULL, 0, &response) == ENOS_OK &&
            enos_response_status(response) == 200,
        "the next call works");
  enos_response_free(response);

  /* Freeing a running call returns at once. */
  check(enos_client_send_async(client, slow, NULL, NULL, &call) == ENOS_OK, "another slow call");
  sleep_ms(50);
  double freed = now_ms();
  enos_call_free(call);
  check(!timing || now_ms() - freed < 20, "free returns at once");
  enos_request_free(slow);

  check(enos_call_fd(NULL) == -1 && !enos_call_done(NULL), "NULL calls");
  check(enos_call_cancel(NULL) == ENOS_ERR_NULL_ARGUMENT, "cancel NULL");
  check(enos_call_wait(NULL, 0, &response) == ENOS_ERR_NULL_ARGUMENT, "wait NULL");
  enos_call_free(NULL);
}

static void queued_cancel(void) {
  enos_client *one = new_client(1);
  enos_request *first = new_request("GET", "/fake/v1/echo?delayMs=300");
  enos_request *second = new_request("GET", "/fake/v1/never-sent");
  enos_call *running = NULL, *queued = NULL;
  check(enos_client_send_async(one, first, NULL, NULL, &running) == ENOS_OK &&
            enos_client_send_async(one, second, NULL, NULL, &queued) == ENOS_OK,
        "two calls on one worker");
  check(enos_call_cancel(queued) == ENOS_OK, "cancel the queued one");
  enos_response *response = NULL;
  check(enos_call_wait(queued, -1, &response) == ENOS_ERR_CANCELLED, "queued: cancelled");
  check(enos_call_wait(running, -1, &response) == ENOS_OK, "the first one");
  enos_response_free(response);
  enos_call_free(running);
  enos_call_free(queued);
  enos_request_free(first);
  enos_request_free(second);
  enos_client_free(one);
}

static void fork_with_a_call_in_flight(enos_client *client) {
  enos_request *request = new_request("GET", "/fake/v1/echo?delayMs=300");
  enos_call *call = NULL;
  check(enos_client_send_async(client, request, NULL, NULL, &call) == ENOS_OK, "a call before fork");
  pid_t child = fork();
  if (child == 0) {
    /* The parent's call does not exist here; the client works. */
    int code = 0;
    if (!enos_call_done(call) || enos_call_fd(call) != -1) code = 2;
    enos_response *response = NULL;
    if (!code && (enos_call_wait(call, -1, &response) != ENOS_ERR_CANCELLED ||
                  strstr(enos_last_error_message(), "parent process") == NULL))
      code = 3;
    enos_call *own = NULL;
    if (!code && enos_client_send_async(client, request, NULL, NULL, &own) != ENOS_OK) code = 4;
    if (!code && enos_call_wait(own, -1, &response) != ENOS_OK) {
      fprintf(stderr, "child: %s\n", enos_last_error_message());
      code = 5;
    }
    if (!code && enos_response_status(response) != 200) code = 6;
    enos_response_free(response);
    enos_call_free(own);
    enos_call_free(call);
    _exit(code);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: the parent's call is not its own; its own works");
  enos_response *response = NULL;
  check(enos_call_wait(call, -1, &response) == ENOS_OK && enos_response_status(response) == 200,
        "the parent's call goes on");
  enos_response_free(response);
  enos_call_free(call);
  enos_request_free(request);
}

int main(int argc, char **argv) {
  int under_valgrind = argc > 1 && strcmp(argv[1], "--valgrind") == 0;
  if (under_valgrind) timing = 0;
  caller = pthread_self();
  enos_client *client = new_client(0);
  enos_response *warm = NULL; /* a token first: the calls then only call */
  check(enos_client_request(client, "GET", "/fake/v1/echo", NULL, NULL, 0, &warm) == ENOS_OK, "warm-up");
  enos_response_free(warm);
  many_at_once(client);
  descriptor_and_cancel(client);
  queued_cancel();
  if (!under_valgrind) fork_with_a_call_in_flight(client);
  enos_client_free(client);
  if (failures) return 1;
  printf("async calls: ok\n");
  return 0;
}
