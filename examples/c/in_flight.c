/*
 * in_flight.c: API calls that never block: several readings fetched at once,
 * waited for with poll() next to the program's own descriptors (here
 * standard input), and a slow call cancelled after a deadline.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * usage: in_flight DEVICE...     (one signed GET per device, all at once)
 * prints one line per call as it completes, then the cancelled call.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

#define MAX_CALLS 16

static int fail(const char *what, enos_status status) {
  fprintf(stderr, "%s: %s: %s\n", what, enos_status_name(status), enos_last_error_message());
  return 1;
}

int main(int argc, char **argv) {
  const char *url = getenv("ENOS_GATEWAY_URL");
  const char *key = getenv("ENOS_APP_KEY");
  const char *secret = getenv("ENOS_APP_SECRET");
  int calls = argc - 1;
  if (url == NULL || key == NULL || secret == NULL || calls < 1 || calls > MAX_CALLS) {
    fprintf(stderr, "usage: in_flight DEVICE... (1 to %d), with ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET\n",
            MAX_CALLS);
    return 2;
  }
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_status status = enos_client_builder_new(url, key, secret, &builder);
  if (status != ENOS_OK) return fail("builder", status);
  status = enos_client_build(builder, &client); /* consumes the builder */
  if (status != ENOS_OK) return fail("client", status);

  // snippet:begin c-in-flight
  enos_call *call[MAX_CALLS] = {0};
  for (int i = 0; i < calls; i++) {
    char path[256];
    snprintf(path, sizeof path, "/fake/v1/echo?device=%s&delayMs=%d", argv[i + 1], 50 * (calls - i));
    enos_request *request = NULL;
    status = enos_request_new("GET", path, &request);
    if (status == ENOS_OK) status = enos_client_send_async(client, request, NULL, NULL, &call[i]);
    enos_request_free(request); /* the call keeps its own copy */
    if (status != ENOS_OK) return fail("send", status);
  }
  /* One poll() over the calls' descriptors and the program's own (stdin). */
  for (int left = calls; left > 0;) {
    struct pollfd fds[MAX_CALLS + 1];
    for (int i = 0; i < calls; i++) fds[i] = (struct pollfd){.fd = call[i] ? enos_call_fd(call[i]) : -1, .events = POLLIN};
    fds[calls] = (struct pollfd){.fd = 0, .events = 0}; /* the program's own work would be here */
    if (poll(fds, (nfds_t)calls + 1, -1) < 0) break;
    for (int i = 0; i < calls; i++) {
      if (call[i] == NULL || !(fds[i].revents & POLLIN)) continue;
      enos_response *response = NULL;
      status = enos_call_wait(call[i], 0, &response); /* done: returns at once */
      if (status == ENOS_OK) {
        printf("%s: HTTP %d\n", argv[i + 1], enos_response_status(response));
      } else {
        printf("%s: %s\n", argv[i + 1], enos_last_error_message());
      }
      enos_response_free(response);
      enos_call_free(call[i]);
      call[i] = NULL;
      left--;
    }
  }

  /* A call that takes too long: wait 200 ms, then cancel it. */
  enos_request *slow_request = NULL;
  enos_call *slow = NULL;
  enos_request_new("GET", "/fake/v1/echo?delayMs=10000", &slow_request);
  enos_client_send_async(client, slow_request, NULL, NULL, &slow);
  enos_request_free(slow_request);
  enos_response *response = NULL;
  if (enos_call_wait(slow, 200, &response) == ENOS_ERR_TIMEOUT && !enos_call_done(slow)) {
    enos_call_cancel(slow); /* done at once; its connection is shut down */
  }
  status = enos_call_wait(slow, -1, &response);
  printf("slow: %s (%s)\n", enos_status_name(status), enos_last_error_message());
  enos_response_free(response);
  enos_call_free(slow);
  // snippet:end c-in-flight

  enos_client_free(client);
  return 0;
}
