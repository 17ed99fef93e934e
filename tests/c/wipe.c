/*
 * wipe.c: strings the library hands out are zeroed before they are freed.
 *
 * The program defines free() (the library's calls to free resolve to it)
 * and checks the bytes of the token it watches when the library frees it.
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * Prints "wiped: yes" and exits 0, or "wiped: no" and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

extern void __libc_free(void *pointer);

static char *watched;
static size_t watched_length;
static int watched_was_zero = -1;

void free(void *pointer) {
  if (pointer != NULL && pointer == watched) {
    watched_was_zero = 1;
    for (size_t i = 0; i < watched_length; i++) {
      if (watched[i] != 0) {
        watched_was_zero = 0;
      }
    }
    watched = NULL;
  }
  __libc_free(pointer);
}

int main(void) {
  char *token = NULL;
  enos_status status = enos_get_access_token(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                                             getenv("ENOS_APP_SECRET"), &token, NULL);
  if (status != ENOS_OK) {
    fprintf(stderr, "enos_get_access_token: %s\n", enos_last_error_message());
    return 2;
  }
  watched = token;
  watched_length = strlen(token);
  enos_string_free(token);
  puts(watched_was_zero == 1 ? "wiped: yes" : "wiped: no");
  return watched_was_zero == 1 ? 0 : 1;
}
