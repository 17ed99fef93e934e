/*
 * request_object.c: the request object as a C host uses it and misuses it,
 * run by tests/c_programs.rs against the fake gateway, plainly, under
 * valgrind and built with AddressSanitizer.
 *
 *   request_object DIR    DIR: a writable folder for the files it makes
 *
 * Checks every function's NULL arguments and refusals (each message naming
 * what to fix), a callback part pulled to its exact length, a download
 * through an output callback written to DIR/callback.bin, a callback that
 * stops the call, and one request sent from four threads at once.
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
 * Prints "request object: ok" and exits 0, or says what failed and exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enos_token.h"

#define DOWNLOAD "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/3000000.bin"
#define UPLOAD "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1"

static int failures;

static void check(int condition, const char *what) {
  if (!condition) {
    const char *message = enos_last_error_message();
    fprintf(stderr, "FAILED: %s (last error: %s)\n", what, message ? message : "none");
    failures++;
  }
}

/* The call failed with `status` and its message holds `text`. */
static void refused(enos_status got, enos_status status, const char *text, const char *what) {
  const char *message = enos_last_error_message();
  int ok = got == status && message != NULL && strstr(message, text) != NULL;
  if (!ok) {
    fprintf(stderr, "FAILED: %s: got %s \"%s\", wanted %s with \"%s\"\n", what,
            enos_status_name(got), message ? message : "", enos_status_name(status), text);
    failures++;
  }
}

struct source {
  size_t length;
  size_t given;
};

static int64_t read_part(void *user_data, uint8_t *buffer, size_t capacity) {
  struct source *source = user_data;
  size_t n = source->length - source->given;
  if (n > capacity) n = capacity;
  if (n > 5000) n = 5000;
  for (size_t i = 0; i < n; i++) buffer[i] = (uint8_t)((source->given + i) % 251);
  source->given += n;
  return (int64_t)n;
}

static int64_t stop_reading(void *user_data, uint8_t *buffer, size_t capacity) {
  (void)user_data;
  (void)buffer;
  (void)capacity;
  return -1;
}

static int write_file(void *user_data, const uint8_t *data, size_t len) {
  return fwrite(data, 1, len, (FILE *)user_data) == len ? 0 : 1;
}

static int stop_writing(void *user_data, const uint8_t *data, size_t len) {
  (void)data;
  *(size_t *)user_data += len;
  return 7;
}

struct shared_send {
  const enos_client *client;
  const enos_request *request;
  int ok;
};

static void *send_from_a_thread(void *argument) {
  struct shared_send *send = argument;
  enos_response *response = NULL;
  send->ok = enos_client_send(send->client, send->request, &response) == ENOS_OK &&
             enos_response_status(response) == 200;
  enos_response_free(response);
  return NULL;
}

static void null_arguments(void) {
  enos_request *request = NULL;
  refused(enos_request_new(NULL, "/a", &request), ENOS_ERR_NULL_ARGUMENT, "method", "NULL method");
  refused(enos_request_new("GET", NULL, &request), ENOS_ERR_NULL_ARGUMENT, "path", "NULL path");
  refused(enos_request_new("GET", "/a", NULL), ENOS_ERR_NULL_ARGUMENT, "request_out", "NULL out");
  refused(enos_request_set_header(NULL, "A", "b"), ENOS_ERR_NULL_ARGUMENT, "request", "header");
  refused(enos_request_set_body(NULL, NULL, NULL, 0), ENOS_ERR_NULL_ARGUMENT, "request", "body");
  refused(enos_request_set_body_file(NULL, NULL, "/x"), ENOS_ERR_NULL_ARGUMENT, "request", "file");
  refused(enos_request_add_part(NULL, "n", NULL, NULL, 0), ENOS_ERR_NULL_ARGUMENT, "request", "part");
  refused(enos_request_add_file_part(NULL, "n", NULL, NULL, "/x"), ENOS_ERR_NULL_ARGUMENT,
          "request", "file part");
  refused(enos_request_add_callback_part(NULL, "n", NULL, NULL, 1, read_part, NULL),
          ENOS_ERR_NULL_ARGUMENT, "request", "callback part");
  refused(enos_request_set_output_fd(NULL, 1), ENOS_ERR_NULL_ARGUMENT, "request", "output fd");
  refused(enos_request_set_output_callback(NULL, write_file, NULL), ENOS_ERR_NULL_ARGUMENT,
          "request", "output callback");
  refused(enos_request_set_progress_callback(NULL, NULL, NULL), ENOS_ERR_NULL_ARGUMENT, "request",
          "progress");
  refused(enos_request_set_timeout_ms(NULL, 1), ENOS_ERR_NULL_ARGUMENT, "request", "timeout");
  refused(enos_client_send(NULL, NULL, NULL), ENOS_ERR_NULL_ARGUMENT, "response_out", "send");
  enos_request_free(NULL);
  enos_response_free(NULL);
  check(enos_response_attempts(NULL) == 0, "attempts of NULL");

  check(enos_request_new("POST", "/a", &request) == ENOS_OK, "a request");
  refused(enos_request_set_header(request, NULL, "b"), ENOS_ERR_NULL_ARGUMENT, "name", "NULL name");
  refused(enos_request_set_body(request, NULL, NULL, 3), ENOS_ERR_NULL_ARGUMENT, "body",
          "NULL body with a length");
  refused(enos_request_add_part(request, NULL, NULL, NULL, 0), ENOS_ERR_NULL_ARGUMENT, "name",
          "NULL part name");
  refused(enos_request_add_callback_part(request, "n", NULL, NULL, 1, NULL, NULL),
          ENOS_ERR_NULL_ARGUMENT, "callback", "NULL read callback");
  refused(enos_request_set_body_file(request, NULL, NULL), ENOS_ERR_NULL_ARGUMENT, "file_path",
          "NULL file path");
  enos_request_free(request);
}

static void refusals(const char *dir) {
  enos_request *request = NULL;
  refused(enos_request_new("GET", "http://elsewhere.example/a", &request),
          ENOS_ERR_INVALID_ARGUMENT, "must start with one /", "absolute URL");
  check(request == NULL, "no request after a refusal");
  check(enos_request_new("POST", UPLOAD, &request) == ENOS_OK, "a request");
  refused(enos_request_set_header(request, "apim-signature", "x"), ENOS_ERR_INVALID_ARGUMENT,
          "apim-signature", "apim header");
  refused(enos_request_set_header(request, "Content-Length", "9"), ENOS_ERR_INVALID_ARGUMENT,
          "Content-Length", "content-length");
  refused(enos_request_set_header(request, "Content-Type", "text/plain"), ENOS_ERR_INVALID_ARGUMENT,
          "comes with the body", "content-type");
  refused(enos_request_set_header(request, "Bad Name", "x"), ENOS_ERR_INVALID_ARGUMENT, "Bad Name",
          "a name with a space");
  refused(enos_request_set_header(request, "X-Split", "a\r\nX-Evil: 1"), ENOS_ERR_INVALID_ARGUMENT,
          "CR, LF or NUL", "a value with CRLF");
  check(enos_request_set_header(request, "Accept", "application/json") == ENOS_OK, "Accept");
  check(enos_request_set_header(request, "accept", NULL) == ENOS_OK, "Accept removed");
  refused(enos_request_set_body_file(request, NULL, "/nonexistent/fw.bin"),
          ENOS_ERR_INVALID_ARGUMENT, "/nonexistent/fw.bin", "a missing file");
  refused(enos_request_add_file_part(request, "enos-file", NULL, NULL, dir),
          ENOS_ERR_INVALID_ARGUMENT, "is a directory", "a directory");
  check(enos_request_add_part(request, "enos-message", "application/json",
                              (const uint8_t *)"{}", 2) == ENOS_OK,
        "a part");
  refused(enos_request_set_body(request, NULL, (const uint8_t *)"{}", 2),
          ENOS_ERR_INVALID_ARGUMENT, "parts", "a body after parts");
  refused(enos_request_set_output_fd(request, 9999), ENOS_ERR_INVALID_ARGUMENT, "9999",
          "a closed fd");
  enos_request_free(request);
}

static void transfers(const enos_client *client, const char *dir) {
  /* An upload with a callback part of exactly its length, sent twice. */
  enos_request *request = NULL;
  enos_response *response = NULL;
  struct source source = {120000, 0};
  check(enos_request_new("POST", UPLOAD, &request) == ENOS_OK &&
            enos_request_add_part(request, "enos-message", "application/json",
                                  (const uint8_t *)"{\"k\":1}", 7) == ENOS_OK &&
            enos_request_add_callback_part(request, "enos-file", "stream.bin", NULL, 120000,
                                           read_part, &source) == ENOS_OK,
        "an upload request");
  check(enos_client_send(client, request, &response) == ENOS_OK &&
            enos_response_status(response) == 200,
        "the upload");
  const char *body = (const char *)enos_response_body(response, NULL);
  check(body && strstr(body, "\"bytes\":120000") != NULL, "the part's length arrived");
  enos_response_free(response);
  response = NULL;
  source.given = 0; /* rewound: each send pulls the bytes anew */
  check(enos_client_send(client, request, &response) == ENOS_OK &&
            enos_response_status(response) == 200,
        "the upload sent again");
  enos_response_free(response);
  response = NULL;
  source.given = 0;
  source.length = 100000; /* fewer bytes than declared */
  refused(enos_client_send(client, request, &response), ENOS_ERR_INVALID_ARGUMENT,
          "ended after 100000 of the 120000 bytes", "a short callback part");
  check(response == NULL, "no response after a failure");
  enos_request_free(request);

  check(enos_request_new("POST", UPLOAD, &request) == ENOS_OK &&
            enos_request_add_part(request, "enos-message", NULL, (const uint8_t *)"{}", 2) ==
                ENOS_OK &&
            enos_request_add_callback_part(request, "enos-file", "x", NULL, 10, stop_reading,
                                           NULL) == ENOS_OK,
        "a request whose part stops");
  refused(enos_client_send(client, request, &response), ENOS_ERR_CANCELLED, "stopped the call",
          "a read callback returning -1");
  enos_request_free(request);

  /* A download through a callback, into a file the test compares. */
  char path[4096];
  snprintf(path, sizeof path, "%s/callback.bin", dir);
  FILE *file = fopen(path, "wb");
  check(file != NULL, "the output file");
  if (file == NULL) return;
  check(enos_request_new("GET", DOWNLOAD, &request) == ENOS_OK &&
            enos_request_set_output_callback(request, write_file, file) == ENOS_OK,
        "a download request");
  check(enos_client_send(client, request, &response) == ENOS_OK &&
            enos_response_status(response) == 200,
        "the download");
  size_t length = 99;
  check(enos_response_body(response, &length) != NULL && length == 0, "an empty body");
  enos_response_free(response);
  response = NULL;
  fclose(file);

  /* The same request from four threads at once, to a callback that is
   * not called (the output is memory again). */
  check(enos_request_set_output_callback(request, NULL, NULL) == ENOS_OK, "memory again");
  pthread_t threads[4];
  struct shared_send sends[4];
  for (int i = 0; i < 4; i++) {
    sends[i] = (struct shared_send){client, request, 0};
    pthread_create(&threads[i], NULL, send_from_a_thread, &sends[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    check(sends[i].ok, "a send from a thread");
  }

  /* A pipe whose reader is gone: ENOS_ERR_IO, never a SIGPIPE that would
   * end this program (its default action). */
  int ends[2];
  check(pipe(ends) == 0, "a pipe");
  close(ends[0]);
  check(enos_request_set_output_fd(request, ends[1]) == ENOS_OK, "the pipe as output");
  refused(enos_client_send(client, request, &response), ENOS_ERR_IO, "Broken pipe",
          "writing to a pipe nobody reads");
  close(ends[1]);
  /* The same for a socket whose peer is gone. */
  check(socketpair(AF_UNIX, SOCK_STREAM, 0, ends) == 0, "a socket pair");
  close(ends[1]);
  check(enos_request_set_output_fd(request, ends[0]) == ENOS_OK, "the socket as output");
  refused(enos_client_send(client, request, &response), ENOS_ERR_IO, "Broken pipe",
          "writing to a socket nobody reads");
  close(ends[0]);

  /* An output callback that stops: ENOS_ERR_CANCELLED, the client goes on. */
  size_t seen = 0;
  check(enos_request_set_output_callback(request, stop_writing, &seen) == ENOS_OK, "stopper");
  refused(enos_client_send(client, request, &response), ENOS_ERR_CANCELLED,
          "output callback stopped", "a write callback returning non-zero");
  check(seen > 0, "the callback saw the first bytes");
  enos_request_free(request);
  check(enos_client_request(client, "GET", "/fake/v1/echo", NULL, NULL, 0, &response) == ENOS_OK &&
            enos_response_status(response) == 200,
        "the next call works");
  enos_response_free(response);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: request_object DIR\n");
    return 2;
  }
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_builder_set_proxy(builder, "") != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    fprintf(stderr, "client: %s\n", enos_last_error_message());
    return 1;
  }
  null_arguments();
  refusals(argv[1]);
  transfers(client, argv[1]);
  enos_client_free(client);
  if (failures) return 1;
  printf("request object: ok\n");
  return 0;
}
