/*
 * files.c: files both ways with the request object. An upload of a
 * measurement point with its files (multipart/form-data, each part with its
 * own Content-Length, as EnOS requires), and a download streamed to a file
 * (constant memory, resumed by itself if the connection breaks).
 *
 *   files upload MESSAGE_JSON FILE...   POST postMeasurepoint: MESSAGE_JSON
 *                                       as the enos-message part, each FILE
 *                                       as an enos-file part; prints the answer
 *   files download FILE_URI OUTPUT      GET the file into OUTPUT (a path);
 *                                       prints the status and the size
 *
 * Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET, and
 * ENOS_ORG_ID (default o1).
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enos_token.h"

/* Prints the last error of a failed call and returns 1. */
static int failed(const char *what) {
  fprintf(stderr, "%s: %s\n", what, enos_last_error_message());
  return 1;
}

/* Progress on stderr: called at most every 100 ms and once at the end. */
static void on_progress(void *user_data, uint64_t sent, uint64_t send_total, uint64_t received,
                        int64_t receive_total) {
  (void)user_data;
  fprintf(stderr, "progress: sent %llu/%llu, received %llu/%lld\n", (unsigned long long)sent,
          (unsigned long long)send_total, (unsigned long long)received,
          (long long)receive_total);
}

static int upload(const enos_client *client, const char *org, int files, char **paths) {
  char path[512];
  snprintf(path, sizeof path, "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=%s",
           org);
  // snippet:begin upload
  enos_request *request = NULL;
  enos_response *response = NULL;
  int status = 1;
  if (enos_request_new("POST", path, &request) != ENOS_OK ||
      /* the enos-message part: JSON read from a file, sent as a field */
      enos_request_add_file_part(request, "enos-message", NULL, "application/json",
                                 paths[0]) != ENOS_OK) {
    status = failed("request");
    goto done;
  }
  for (int i = 1; i < files; i++) {  /* streamed from disk, any size */
    if (enos_request_add_file_part(request, "enos-file", NULL, NULL, paths[i]) != ENOS_OK) {
      status = failed(paths[i]);
      goto done;
    }
  }
  enos_request_set_progress_callback(request, on_progress, NULL);
  if (enos_client_send(client, request, &response) != ENOS_OK) {
    status = failed("upload");
    goto done;
  }
  printf("HTTP %d\n%s\n", (int)enos_response_status(response),
         (const char *)enos_response_body(response, NULL));
  status = enos_response_status(response) == 200 ? 0 : 1;
  done:
  enos_response_free(response);
  enos_request_free(request);
  // snippet:end upload
  return status;
}

static int download(const enos_client *client, const char *org, const char *file_uri,
                    const char *output) {
  char path[1024];
  snprintf(path, sizeof path, "/connect-service/v2.1/files?action=download&fileUri=%s&orgId=%s",
           file_uri, org);
  // snippet:begin download
  enos_request *request = NULL;
  enos_response *response = NULL;
  int status = 1;
  int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    perror(output);
    return 1;
  }
  if (enos_request_new("GET", path, &request) != ENOS_OK ||
      enos_request_set_output_fd(request, fd) != ENOS_OK ||  /* written as it arrives */
      enos_client_send(client, request, &response) != ENOS_OK) {
    status = failed("download");
    goto done;
  }
  printf("HTTP %d, %lld bytes written to %s (%u attempt(s))\n",
         (int)enos_response_status(response), (long long)lseek(fd, 0, SEEK_CUR), output,
         (unsigned)enos_response_attempts(response));
  status = enos_response_status(response) == 200 ? 0 : 1;
  done:
  enos_response_free(response);
  enos_request_free(request);
  close(fd);  /* the library never closes it */
  // snippet:end download
  return status;
}

int main(int argc, char **argv) {
  const char *org = getenv("ENOS_ORG_ID") ? getenv("ENOS_ORG_ID") : "o1";
  if (argc < 3 || (strcmp(argv[1], "upload") != 0 && strcmp(argv[1], "download") != 0) ||
      (strcmp(argv[1], "download") == 0 && argc != 4)) {
    fprintf(stderr, "usage: files upload MESSAGE_JSON FILE... | files download FILE_URI OUTPUT\n");
    return 2;
  }
  enos_client_builder *builder = NULL;
  enos_client *client = NULL;
  if (enos_client_builder_new(getenv("ENOS_GATEWAY_URL"), getenv("ENOS_APP_KEY"),
                              getenv("ENOS_APP_SECRET"), &builder) != ENOS_OK ||
      enos_client_build(builder, &client) != ENOS_OK) {
    return failed("client (set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET)");
  }
  int status = strcmp(argv[1], "upload") == 0
                   ? upload(client, org, argc - 2, argv + 2)
                   : download(client, org, argv[2], argv[3]);
  enos_client_free(client);
  return status;
}
