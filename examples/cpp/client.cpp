// client.cpp: the C++ wrapper (include/enos_token.hpp) end to end.
//
// Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET.
// Prints what each step got (tokens shortened to 4 characters) and exits 0;
// any unexpected enos::Error ends it with exit code 1.
//
// Build (one line): c++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude
//   examples/cpp/client.cpp -Ltarget/debug -lenos_token -Wl,-rpath,"$PWD/target/debug" -o client
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "enos_token.hpp"

/** A temporary file holding `content`; its path. */
static std::string write_temporary_file(const std::string &content) {
  char path[] = "/tmp/enos-cpp-file-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    throw std::runtime_error("cannot write a temporary file");
  }
  close(fd);
  return path;
}

int main() {
  const char *gateway = std::getenv("ENOS_GATEWAY_URL");
  const char *app_key = std::getenv("ENOS_APP_KEY");
  const char *app_secret = std::getenv("ENOS_APP_SECRET");
  if (gateway == nullptr || app_key == nullptr || app_secret == nullptr) {
    std::cerr << "set ENOS_GATEWAY_URL, ENOS_APP_KEY and ENOS_APP_SECRET\n";
    return 2;
  }
  try {
    // snippet:begin cpp
    std::vector<std::string> log;
    std::mutex log_mutex;  // the log function is called from any thread, the library's included
    enos::Client client = enos::Client::Builder(gateway, app_key, app_secret)
                              .timeouts(std::chrono::seconds(5), std::chrono::seconds(10))
                              .refresh_margin(std::chrono::minutes(10))
                              .log([&](enos_log_level, const char *message) {
                                std::lock_guard<std::mutex> hold(log_mutex);
                                log.emplace_back(message);
                              })
                              .build();

    enos::Token token = client.get_token();
    std::cout << "get: " << token.access_token.substr(0, 4) << "… expires in " << token.expire_s << " s\n";
    enos::Token refreshed = client.refresh_token(token.access_token);
    std::cout << "refresh: " << (refreshed.access_token != token.access_token ? "new token" : "same token")
              << ", expires in " << refreshed.expire_s << " s\n";

    std::string current = client.access_token();  // cached: the refreshed token
    std::cout << "access_token: " << (current == refreshed.access_token ? "the refreshed token" : "?") << "\n";
    std::string headers = client.auth_headers("pageSize=10", "{\"k\":\"v\"}");
    std::cout << "auth_headers: " << headers.substr(0, headers.find(':')) << " …\n";
    enos::Response response = client.request("POST", "/fake/v1/echo?orgId=o1", "{\"k\":\"v\"}", "application/json");
    std::cout << "request: HTTP " << response.status() << ", " << response.header("Content-Type").value_or("?")
              << "\n";
    // snippet:end cpp

    // Files both ways: a measurement point with a file part, and a download
    // streamed to a callback (or, with output_fd, to a file).
    std::string csv_path = write_temporary_file(std::string(100000, 'x'));
    // snippet:begin cpp-files
    enos::Request upload("POST", "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1");
    upload.part("enos-message", R"({"payload":[]})", "application/json")
        .file_part("enos-file", csv_path, "readings.csv", "text/csv");
    enos::Response uploaded = client.send(upload);

    size_t received = 0;
    enos::Request download("GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/3000000.bin");
    download.output([&received](std::string_view data) {
      received += data.size();  // write it somewhere
      return true;              // false stops the call
    });
    enos::Response downloaded = client.send(download);
    // snippet:end cpp-files
    std::remove(csv_path.c_str());
    std::cout << "upload: HTTP " << uploaded.status() << ", "
              << (uploaded.body().find(R"("bytes":100000,"contentType":"text/csv","filename":"readings.csv")") !=
                          std::string_view::npos
                      ? "readings.csv arrived"
                      : std::string(uploaded.body()))
              << ", requestId " << (uploaded.request_id().value_or("-").substr(0, 5) == "fake-" ? "present" : "?")
              << "\n";
    std::cout << "download: HTTP " << downloaded.status() << ", " << received << " bytes, body "
              << downloaded.body().size() << "\n";
    try {
      enos::Request failing("GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/1000.bin");
      failing.output([](std::string_view) -> bool { throw std::runtime_error("disk full"); });
      client.send(failing);
    } catch (const std::runtime_error &e) {
      std::cout << "output exception: " << e.what() << "\n";
    }
    try {
      enos::Request("GET", "/x").header("Content-Length", "5");
    } catch (const enos::Error &e) {
      std::cout << "bad header: " << e.status_name() << "\n";
    }

    enos::Counters counters = client.counters();
    std::cout << "counters: gets=" << counters.get_requests << " refreshes=" << counters.refresh_requests
              << " cache_hits=" << counters.cache_hits << "\n";
    size_t log_lines = 0;
    {
      std::lock_guard<std::mutex> hold(log_mutex);
      log_lines = log.size();
    }
    std::cout << "log lines: " << log_lines << "\n";

    enos::Token one_shot = enos::get_access_token(gateway, app_key, app_secret);
    std::cout << "one-shot get: " << (one_shot.access_token == refreshed.access_token ? "the same token" : "?")
              << "\n";
    std::string signature = enos::sign_request(current, "b=2&a=1", "", 1700000000123, app_secret);
    std::cout << "signature length: " << signature.size() << "\n";

    // The error path: a wrong secret is a gateway error (1003), with its codes.
    try {
      enos::Client wrong = enos::Client::Builder(gateway, app_key, "not-the-secret").build();
      wrong.get_token();
      std::cout << "error path: no error?\n";
    } catch (const enos::Error &e) {
      std::cout << "error path: " << e.status_name() << " service=" << e.service_status()
                << " http=" << e.http_status() << " message=" << e.what() << "\n";
    }
    // Bad input throws before any request.
    try {
      enos::Client::Builder("ftp://nowhere", app_key, app_secret);
    } catch (const enos::Error &e) {
      std::cout << "bad URL: " << e.status_name() << "\n";
    }
    try {
      enos::Client::Builder(std::getenv("ENOS_NO_SUCH_VARIABLE"), app_key, app_secret);
    } catch (const enos::Error &e) {
      std::cout << "unset variable: " << e.status_name() << " " << e.what() << "\n";
    }
    try {
      client.invalidate(std::string("with\0nul", 8));
    } catch (const enos::Error &e) {
      std::cout << "embedded NUL: " << e.status_name() << "\n";
    }
    enos::Client moved = std::move(client);
    try {
      client.access_token();  // NOLINT: use after move, on purpose
    } catch (const enos::Error &e) {
      std::cout << "moved-from: " << e.status_name() << "\n";
    }
    std::cout << "moved-to: " << (moved.access_token() == current ? "works" : "?") << "\n";

    // Two clients sharing their token through a private directory, one of
    // them refreshing it in the background: the second asks no gateway.
    char directory[] = "/tmp/enos-cpp-shared-XXXXXX";
    if (mkdtemp(directory) != nullptr) {
      enos::Client first = enos::Client::Builder(gateway, app_key, app_secret)
                               .shared_cache(directory)
                               .background_refresh(true)
                               .build();
      enos::Client second = enos::Client::Builder(gateway, app_key, app_secret).shared_cache(directory).build();
      std::string shared = first.access_token();
      std::cout << "shared cache: " << (second.access_token() == shared ? "one token" : "?")
                << ", second client's requests=" << second.counters().get_requests << "\n";
    }
    try {
      enos::Client::Builder(gateway, app_key, app_secret).shared_cache("/tmp");
    } catch (const enos::Error &e) {
      std::cout << "shared cache in /tmp: " << e.status_name() << "\n";
    }

    // Calls that never block: started at once, waited for later (or polled
    // through fd(), or cancelled).
    enos::Client &api = moved;
    // snippet:begin cpp-async
    std::vector<enos::Call> calls;
    for (int device = 0; device < 20; device++) {
      calls.push_back(api.send_async(enos::Request("GET", "/fake/v1/echo?device=" + std::to_string(device))));
    }
    int answered = 0;
    for (enos::Call &call : calls) {
      answered += call.wait().status() == 200;  // the response, or enos::Error
    }
    std::cout << "async: " << answered << " of " << calls.size() << " calls answered HTTP 200\n";

    enos::Call slow = api.send_async(enos::Request("GET", "/fake/v1/echo?delayMs=10000"));
    // slow.fd() becomes readable when it is done: poll it with your own descriptors.
    std::cout << "wait_for 10 ms: " << (slow.wait_for(std::chrono::milliseconds(10)) ? "done?" : "not done yet") << "\n";
    slow.cancel();  // done at once; its connection is shut down
    try {
      slow.wait();
    } catch (const enos::Error &e) {
      std::cout << "cancelled: " << e.status_name() << "\n";
    }
    // snippet:end cpp-async
    try {
      enos::Request failing("GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/1000.bin");
      failing.output([](std::string_view) -> bool { throw std::runtime_error("disk full"); });
      api.send_async(failing).wait();
    } catch (const std::runtime_error &e) {
      std::cout << "async output exception: " << e.what() << "\n";
    }
    {
      enos::Call running = api.send_async(enos::Request("GET", "/fake/v1/echo?delayMs=10000"));
      auto started = std::chrono::steady_clock::now();
      running = api.send_async(enos::Request("GET", "/fake/v1/echo"));  // the running call is cancelled
      std::cout << "replacing a running call: "
                << (std::chrono::steady_clock::now() - started < std::chrono::milliseconds(100) ? "at once" : "slow")
                << ", the new one answers HTTP " << running.wait().status() << "\n";
    }
  } catch (const enos::Error &e) {
    std::cerr << "unexpected: " << e.status_name() << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
