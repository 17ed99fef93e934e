/*
 * first.c: the README's first program. Builds a client, gets the managed
 * token and signs an API call with it: prints the three apim-* headers.
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 */
#include <stdio.h>
#include <stdlib.h>

#include "enos_token.h"

int main(void) {
  // snippet:begin first
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  char *headers = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK ||  /* consumes builder */
      enos_client_auth_headers(client, "orgId=o1", NULL, 0, &headers) != ENOS_OK) {
    fprintf(stderr, "enos-token: %s\n", enos_last_error_message());
    enos_client_free(client);  /* NULL is fine */
    return 1;
  }
  printf("%s", headers);  /* apim-accesstoken, apim-signature, apim-timestamp */
  enos_string_free(headers);
  enos_client_free(client);
  return 0;
  // snippet:end first
}
