// snippet:begin first
/* first.c: call an EnOS API. The client signs the call with the token it
 * keeps (fetched, refreshed early, renewed if the gateway refuses it).
 *   first [PATH]   (default: the asset API; the fake gateway serves it too)
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET. */
#include <stdio.h>
#include <stdlib.h>

#include "enos_token.h"

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "/asset-service/v2.1/assets?orgId=o1";
  const char *url = getenv("ENOS_GATEWAY_URL"), *key = getenv("ENOS_APP_KEY");
  const char *secret = getenv("ENOS_APP_SECRET");
  if (url == NULL || key == NULL || secret == NULL) {
    fprintf(stderr, "set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET\n");
    return 2;
  }
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_response *response = NULL;
  if (enos_client_builder_new(url, key, secret, &builder) != ENOS_OK ||
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
}
// snippet:end first
