/*
 * first.c: the README's first program. Builds a client and calls an API
 * with it: signed with the token the client keeps, a refused token renewed.
 * Prints the HTTP status and the body.
 *
 *   first [PATH]   PATH: path and query of the API (default an asset API)
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 */
#include <stdio.h>
#include <stdlib.h>

#include "enos_token.h"

int main(int argc, char **argv) {
  // snippet:begin first
  const char *path = argc > 1 ? argv[1] : "/asset-service/v2.1/assets?orgId=o1";
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_response *response = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK ||  /* consumes builder */
      enos_client_request(client, "GET", path, NULL, NULL, 0, &response) != ENOS_OK) {
    fprintf(stderr, "enos-token: %s\n", enos_last_error_message());
    enos_client_free(client);  /* NULL is fine */
    return 1;
  }
  printf("HTTP %d\n%s\n", (int)enos_response_status(response),
         (const char *)enos_response_body(response, NULL));  /* NUL-terminated */
  enos_response_free(response);
  enos_client_free(client);
  return 0;
  // snippet:end first
}
