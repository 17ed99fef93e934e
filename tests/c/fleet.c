/*
 * fleet.c: one process of a fleet sharing an app key through a shared
 * token cache (tests/shared_cache.rs runs several at once).
 *
 *   fleet run SECONDS   asks for the managed token before each simulated API
 *                       call (the fake gateway's signed echo API, which
 *                       rejects a token the gateway retired), invalidating
 *                       a rejected token; prints "calls N rejected R errors E"
 *   fleet once          gets one managed token and prints "token: T"
 *   fleet twice         the same, then again after reading a line from stdin
 *   fleet timestamps N  prints the apim-timestamp of N signed calls
 *
 * Environment: ENOS_GATEWAY_URL (http://127.0.0.1:PORT), ENOS_APP_KEY,
 * ENOS_APP_SECRET, ENOS_SHARED_CACHE (the directory), ENOS_MARGIN_S;
 * optional ENOS_TIMEOUT_MS (overall timeout, default 5000) and ENOS_LOG
 * (set: log lines to stderr as "LEVEL message").
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "enos_token.h"

static const char *env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return value;
}

static void log_line(enos_log_level level, const char *message, void *user_data) {
  (void)user_data;
  fprintf(stderr, "%d %s\n", (int)level, message);
}

static enos_client *build(void) {
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  enos_status status = enos_client_builder_new(env("ENOS_GATEWAY_URL"), env("ENOS_APP_KEY"),
                                               env("ENOS_APP_SECRET"), &builder);
  if (status == ENOS_OK) {
    status = enos_client_builder_set_shared_cache(builder, env("ENOS_SHARED_CACHE"));
  }
  if (status == ENOS_OK) {
    status = enos_client_builder_set_refresh_margin_s(
        builder, (uint32_t)strtoul(env("ENOS_MARGIN_S"), NULL, 10));
  }
  if (status == ENOS_OK) {
    const char *timeout = getenv("ENOS_TIMEOUT_MS");
    status = enos_client_builder_set_timeout_ms(
        builder, 2000, timeout != NULL ? (uint32_t)strtoul(timeout, NULL, 10) : 5000);
  }
  if (status == ENOS_OK && getenv("ENOS_LOG") != NULL) {
    status = enos_client_builder_set_log_callback(builder, log_line, NULL);
  }
  if (status != ENOS_OK) {
    fprintf(stderr, "builder: %s\n", enos_last_error_message());
    enos_client_builder_free(builder);
    return NULL;
  }
  if (enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "build: %s\n", enos_last_error_message());
  }
  return client;
}

/* POSTs a signed call to the fake's echo API: 1 accepted, 0 rejected, -1 error. */
static int api_call(const char *headers) {
  const char *url = env("ENOS_GATEWAY_URL");
  const char *colon = strrchr(url, ':');
  struct sockaddr_in address = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)atoi(colon + 1))};
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  char request[4096];
  int length = snprintf(request, sizeof request,
                        "POST /fake/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n%s\r\n",
                        headers);
  char answer[64] = {0};
  int ok = write(fd, request, (size_t)length) == length && read(fd, answer, sizeof answer - 1) > 0;
  close(fd);
  if (!ok) return -1;
  return strncmp(answer, "HTTP/1.1 200", 12) == 0 ? 1 : 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  enos_client *client = build();
  if (client == NULL) {
    return 1;
  }
  if (strcmp(mode, "once") == 0 || strcmp(mode, "twice") == 0) {
    enos_status status = ENOS_OK;
    for (int round = 0; status == ENOS_OK && round < (mode[0] == 'o' ? 1 : 2); round++) {
      char line[16];
      if (round == 1 && fgets(line, sizeof line, stdin) == NULL) {
        break;
      }
      char *token = NULL;
      status = enos_client_access_token(client, &token);
      if (status == ENOS_OK) {
        printf("token: %s\n", token);
        fflush(stdout);
      } else {
        fprintf(stderr, "access token: %s\n", enos_last_error_message());
      }
      enos_string_free(token);
    }
    enos_client_free(client);
    return status == ENOS_OK ? 0 : 1;
  }
  if (strcmp(mode, "timestamps") == 0) {
    long count = argc > 2 ? atol(argv[2]) : 1000;
    for (long i = 0; i < count; i++) {
      char *headers = NULL;
      if (enos_client_auth_headers(client, "", NULL, 0, &headers) != ENOS_OK) {
        fprintf(stderr, "auth headers: %s\n", enos_last_error_message());
        enos_client_free(client);
        return 1;
      }
      printf("%s\n", strstr(headers, "apim-timestamp: ") + strlen("apim-timestamp: "));
      enos_string_free(headers);
    }
    enos_client_free(client);
    return 0;
  }
  double until = now_s() + (argc > 2 ? atof(argv[2]) : 5.0);
  long calls = 0, rejected = 0, errors = 0;
  struct timespec pause = {0, 10 * 1000 * 1000};
  while (now_s() < until) {
    char *headers = NULL;
    if (enos_client_auth_headers(client, "", NULL, 0, &headers) != ENOS_OK) {
      fprintf(stderr, "auth headers: %s\n", enos_last_error_message());
      errors++;
    } else {
      calls++;
      int verdict = api_call(headers);
      if (verdict < 0) {
        errors++;
      } else if (verdict == 0) {
        rejected++;
        const char *token = strstr(headers, "apim-accesstoken: ") + strlen("apim-accesstoken: ");
        char rejected_token[1024];
        size_t length = strcspn(token, "\r");
        memcpy(rejected_token, token, length < 1023 ? length : 1023);
        rejected_token[length < 1023 ? length : 1023] = '\0';
        enos_client_invalidate(client, rejected_token);
      }
    }
    enos_string_free(headers);
    nanosleep(&pause, NULL);
  }
  printf("calls %ld rejected %ld errors %ld\n", calls, rejected, errors);
  enos_client_free(client);
  return 0;
}
