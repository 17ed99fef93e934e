/*
 * version.c: the header's version macros agree with each other and with the
 * library's enos_version(). Prints "header X library Y num N" and exits 0
 * when they agree, 1 when not.
 */
#include <stdio.h>
#include <string.h>

#include "enos_token.h"

#if ENOS_TOKEN_VERSION_NUM < 0x000100
#error "ENOS_TOKEN_VERSION_NUM is usable in #if"
#endif

int main(void) {
  char built[64];
  snprintf(built, sizeof built, "%d.%d.%d", ENOS_TOKEN_VERSION_MAJOR, ENOS_TOKEN_VERSION_MINOR,
           ENOS_TOKEN_VERSION_PATCH);
  int number = (ENOS_TOKEN_VERSION_MAJOR << 16) | (ENOS_TOKEN_VERSION_MINOR << 8) |
               ENOS_TOKEN_VERSION_PATCH;
  printf("header %s library %s num %06x\n", ENOS_TOKEN_VERSION, enos_version(),
         (unsigned)ENOS_TOKEN_VERSION_NUM);
  int agree = strcmp(built, ENOS_TOKEN_VERSION) == 0 && strcmp(ENOS_TOKEN_VERSION, enos_version()) == 0 &&
              number == ENOS_TOKEN_VERSION_NUM;
  return agree ? 0 : 1;
}
