/*
 * refresh.c: get an EnOS access token, refresh it, print both.
 *
 * Reads the gateway and the application from the environment:
 *   ENOS_GATEWAY_URL   e.g. https://apigw.example.com or http://127.0.0.1:8080
 *   ENOS_APP_KEY       the application's access key
 *   ENOS_APP_SECRET    the application's secret (never printed)
 *   ENOS_CA_FILE       optional: PEM file of a private CA to trust
 *
 * Prints, on success:
 *   token: <token> (expires in <seconds> s)
 *   refreshed: <token> (expires in <seconds> s)
 * and exits 0. On failure it prints the status name, the library's message
 * and the gateway/HTTP codes to stderr, and exits 1.
 *
 * Build (from the repository root, after `cargo build`):
 *   cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/c/refresh.c \
 *      -Ltarget/debug -lenos_token -Wl,-rpath,"$PWD/target/debug" -o refresh
 */
#include <stdio.h>
#include <stdlib.h>

#include "enos_token.h"

/* Prints why `what` failed, from the calling thread's last error. */
static void report(const char *what, enos_status status) {
  const char *message = enos_last_error_message();
  fprintf(stderr, "%s failed: %s: %s\n", what, enos_status_name((int32_t)status),
          message != NULL ? message : "(no message)");
  if (enos_last_service_status() != 0) {
    fprintf(stderr, "  gateway status: %d\n", (int)enos_last_service_status());
  }
  if (enos_last_http_status() != 0) {
    fprintf(stderr, "  HTTP status: %d\n", (int)enos_last_http_status());
  }
}

static const char *required_env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL || value[0] == '\0') {
    fprintf(stderr, "set %s (see the comment at the top of refresh.c)\n", name);
    return NULL;
  }
  return value;
}

int main(void) {
  const char *gateway = required_env("ENOS_GATEWAY_URL");
  const char *app_key = required_env("ENOS_APP_KEY");
  const char *app_secret = required_env("ENOS_APP_SECRET");
  const char *ca_file = getenv("ENOS_CA_FILE");
  if (gateway == NULL || app_key == NULL || app_secret == NULL) {
    return 2;
  }

  /* snippet:begin c */
  int exit_code = 1;
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  char *token = NULL;
  char *refreshed = NULL;
  int64_t expire = 0;

  enos_status status = enos_client_builder_new(gateway, app_key, app_secret, &builder);
  if (status != ENOS_OK) {
    report("enos_client_builder_new", status);
    goto done;
  }
  if (ca_file != NULL && ca_file[0] != '\0') {
    status = enos_client_builder_set_ca_file(builder, ca_file);
    if (status != ENOS_OK) {
      report("enos_client_builder_set_ca_file", status);
      enos_client_builder_free(builder);
      goto done;
    }
  }
  /* Consumes the builder, even on failure. */
  status = enos_client_build(builder, &client);
  if (status != ENOS_OK) {
    report("enos_client_build", status);
    goto done;
  }

  status = enos_client_get_token(client, &token, &expire);
  if (status != ENOS_OK) {
    report("enos_client_get_token", status);
    goto done;
  }
  printf("token: %s (expires in %lld s)\n", token, (long long)expire);

  status = enos_client_refresh_token(client, token, &refreshed, &expire);
  if (status != ENOS_OK) {
    report("enos_client_refresh_token", status);
    goto done;
  }
  printf("refreshed: %s (expires in %lld s)\n", refreshed, (long long)expire);
  exit_code = 0;

done:
  enos_string_free(token);     /* NULL is fine */
  enos_string_free(refreshed);
  enos_client_free(client);    /* NULL is fine */
  return exit_code;
  /* snippet:end c */
}
