/*
 * last_error.c: the thread's last error as a C host uses it, built with
 * AddressSanitizer by tests/c_programs.rs.
 *
 * 1. The message of a failed call is passed straight back in as arguments of
 *    the next calls (a query to sign, an app key, a log line): the library
 *    must finish reading its arguments before it replaces the message.
 * 2. A log callback that makes a failing library call inside a successful
 *    one: after the outer call, the last error is NULL.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * Prints "last error: ok" and exits 0, or says what failed and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

static int failures;

static void check(int condition, const char *what) {
  if (!condition) {
    fprintf(stderr, "FAILED: %s\n", what);
    failures++;
  }
}

static void failing_call_in_callback(enos_log_level level, const char *message, void *user_data) {
  (void)level;
  (void)message;
  (void)user_data;
  char *token = NULL;
  enos_status status = enos_get_access_token("not a URL", "k", "s", &token, NULL);
  check(status == ENOS_ERR_INVALID_ARGUMENT, "the callback's own call fails");
  check(enos_last_error_message() != NULL, "the callback sees its own failure");
}

int main(void) {
  const char *url = getenv("ENOS_GATEWAY_URL");
  const char *key = getenv("ENOS_APP_KEY");
  const char *secret = getenv("ENOS_APP_SECRET");
  if (url == NULL || key == NULL || secret == NULL) {
    fprintf(stderr, "ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET must be set\n");
    return 2;
  }

  /* 1. The message, passed back in. */
  char *token = NULL;
  check(enos_get_access_token("not a URL", key, secret, &token, NULL) == ENOS_ERR_INVALID_ARGUMENT,
        "a bad URL is refused");
  const char *message = enos_last_error_message();
  check(message != NULL, "a message after a failure");
  char *signature = NULL;
  check(enos_sign_request("token", message, NULL, 0, 1, "secret", &signature) == ENOS_OK,
        "signing with the message as the query");
  check(enos_last_error_message() == NULL, "NULL after the successful call");
  enos_string_free(signature);

  check(enos_get_access_token("not a URL", key, secret, &token, NULL) == ENOS_ERR_INVALID_ARGUMENT,
        "a bad URL is refused again");
  message = enos_last_error_message();
  check(enos_get_access_token(url, message, secret, &token, NULL) == ENOS_ERR_SERVICE,
        "the message as an (unknown) app key");
  check(enos_last_service_status() == 1002, "the gateway does not know that app key");

  /* 2. A callback's failure inside a successful call. */
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  check(enos_client_builder_new(url, key, secret, &builder) == ENOS_OK, "builder");
  enos_client_builder_set_log_callback(builder, failing_call_in_callback, NULL);
  check(enos_client_build(builder, &client) == ENOS_OK, "client");
  check(enos_client_access_token(client, &token) == ENOS_OK, "the managed token");
  check(enos_last_error_message() == NULL, "no last error after the successful outer call");
  check(enos_last_service_status() == 0 && enos_last_http_status() == 0, "no codes either");
  enos_string_free(token);
  enos_client_free(client);

  puts(failures == 0 ? "last error: ok" : "last error: FAILED");
  return failures == 0 ? 0 : 1;
}
