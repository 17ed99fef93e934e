/*
 * api_call.c: call an EnOS API with the client's managed token, signed.
 *
 * Uses libcurl for HTTP and enos-token for everything EnOS: the token (got,
 * cached and refreshed by the client) and the three apim-* headers. By
 * default it calls the fake gateway's signed test API, /fake/v1/echo, which
 * answers whether the signature was right.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET (as in
 * refresh.c), and optionally ENOS_API_PATH (default "/fake/v1/echo") and
 * ENOS_API_QUERY (default "pageSize=10&orgId=o15").
 *
 * Prints the HTTP status and body of the answer; exits 0 on HTTP 200.
 *
 * Build: cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/c/api_call.c \
 *          -Ltarget/debug -lenos_token -lcurl -Wl,-rpath,"$PWD/target/debug" -o api_call
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "enos_token.h"

static const char *env_or(const char *name, const char *fallback) {
  const char *value = getenv(name);
  return (value != NULL && value[0] != '\0') ? value : fallback;
}

static void report(const char *what, enos_status status) {
  const char *message = enos_last_error_message();
  fprintf(stderr, "%s failed: %s: %s\n", what, enos_status_name((int32_t)status),
          message != NULL ? message : "(no message)");
}

/* Adds each "name: value\r\n" line of `headers` to a curl header list. */
static struct curl_slist *add_header_lines(struct curl_slist *list, char *headers) {
  for (char *line = strtok(headers, "\r\n"); line != NULL; line = strtok(NULL, "\r\n")) {
    struct curl_slist *grown = curl_slist_append(list, line);
    if (grown == NULL) {
      curl_slist_free_all(list);
      return NULL;
    }
    list = grown;
  }
  return list;
}

static size_t print_body(char *data, size_t size, size_t count, void *unused) {
  (void)unused;
  fwrite(data, size, count, stdout);
  return size * count;
}

int main(void) {
  const char *gateway = env_or("ENOS_GATEWAY_URL", NULL);
  const char *app_key = env_or("ENOS_APP_KEY", NULL);
  const char *app_secret = env_or("ENOS_APP_SECRET", NULL);
  const char *path = env_or("ENOS_API_PATH", "/fake/v1/echo");
  const char *query = env_or("ENOS_API_QUERY", "pageSize=10&orgId=o15");
  const char *body = "{\"assetIds\":[\"a1\",\"a2\"]}";
  if (gateway == NULL || app_key == NULL || app_secret == NULL) {
    fprintf(stderr, "set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET\n");
    return 2;
  }

  int exit_code = 1;
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  char *headers = NULL;
  struct curl_slist *header_list = NULL;
  CURL *curl = NULL;
  char url[2048];

  enos_status status = enos_client_builder_new(gateway, app_key, app_secret, &builder);
  if (status != ENOS_OK) {
    report("enos_client_builder_new", status);
    goto done;
  }
  status = enos_client_build(builder, &client); /* consumes the builder */
  if (status != ENOS_OK) {
    report("enos_client_build", status);
    goto done;
  }

  /* The signature covers the query and the JSON body exactly as sent. */
  status = enos_client_auth_headers(client, query, (const uint8_t *)body, strlen(body), &headers);
  if (status != ENOS_OK) {
    report("enos_client_auth_headers", status);
    goto done;
  }
  header_list = add_header_lines(NULL, headers);
  header_list = header_list ? curl_slist_append(header_list, "Content-Type: application/json") : NULL;
  if (header_list == NULL) {
    fprintf(stderr, "out of memory\n");
    goto done;
  }
  if (snprintf(url, sizeof url, "%s%s?%s", gateway, path, query) >= (int)sizeof url) {
    fprintf(stderr, "URL too long\n");
    goto done;
  }

  curl = curl_easy_init();
  if (curl == NULL) {
    fprintf(stderr, "curl_easy_init failed\n");
    goto done;
  }
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, print_body);
  CURLcode result = curl_easy_perform(curl);
  if (result != CURLE_OK) {
    fprintf(stderr, "HTTP call failed: %s\n", curl_easy_strerror(result));
    goto done;
  }
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  printf("\nHTTP status: %ld\n", http_status);
  exit_code = http_status == 200 ? 0 : 1;

done:
  curl_easy_cleanup(curl); /* NULL is fine */
  curl_slist_free_all(header_list);
  enos_string_free(headers);
  enos_client_free(client);
  return exit_code;
}
