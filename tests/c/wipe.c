/*
 * wipe.c: strings the library hands out are zeroed when enos_string_free()
 * is given them.
 *
 * The program defines free() (the library's calls to free resolve to it)
 * and checks the bytes of the string it watches when the library frees it.
 * A short string's block may instead be kept by the thread for its next
 * string (zeroed, still allocated): then its bytes are read where they are.
 * A 64-byte signature is always freed. Environment: ENOS_GATEWAY_URL,
 * ENOS_APP_KEY, ENOS_APP_SECRET. Prints "wiped: yes" and exits 0, or
 * "wiped: no" and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enos_token.h"

extern void __libc_free(void *pointer);

static char *watched;
static size_t watched_length;
static int watched_was_zero = -1;

static int all_zero(const char *bytes, size_t length) {
  for (size_t i = 0; i < length; i++) {
    if (bytes[i] != 0) {
      return 0;
    }
  }
  return 1;
}

void free(void *pointer) {
  if (pointer != NULL && pointer == watched) {
    watched_was_zero = all_zero(watched, watched_length);
    watched = NULL;
  }
  __libc_free(pointer);
}

/* Gives `text` (from the library) back and says whether it was zeroed. */
static int zeroed_when_given_back(char *text, int must_be_freed) {
  watched = text;
  watched_length = strlen(text);
  watched_was_zero = -1;
  enos_string_free(text);
  if (watched_was_zero == -1) { /* kept for the thread's next string */
    watched = NULL;
    return !must_be_freed && all_zero(text, watched_length);
  }
  return watched_was_zero == 1;
}

int main(void) {
  char *token = NULL;
  enos_status status = enos_get_access_token(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                                             getenv("ENOS_APP_SECRET"), &token, NULL);
  if (status != ENOS_OK) {
    fprintf(stderr, "enos_get_access_token: %s\n", enos_last_error_message());
    return 2;
  }
  char *signature = NULL;
  status = enos_sign_request(token, "a=1", NULL, 0, 1700000000000, getenv("ENOS_APP_SECRET"),
                             &signature);
  if (status != ENOS_OK || strlen(signature) < 64) {
    fprintf(stderr, "enos_sign_request: %s\n", enos_last_error_message());
    return 2;
  }
  int wiped = zeroed_when_given_back(token, 0) && zeroed_when_given_back(signature, 1);
  puts(wiped ? "wiped: yes" : "wiped: no");
  return wiped ? 0 : 1;
}
