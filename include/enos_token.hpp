/*
 * enos_token.hpp: a header-only C++17 wrapper over enos_token.h.
 *
 * - enos::Client: move-only, RAII, built with enos::Client::Builder; API
 *   calls with Client::request() or an enos::Request and Client::send(), or
 *   without blocking with Client::send_async() and its enos::Call.
 * - Methods return std::string (and the expiry), and throw enos::Error on
 *   failure, carrying the status, the gateway status, the HTTP status and the
 *   library's message.
 * - Every string the C library hands out is owned by a unique_ptr the moment
 *   it arrives, so nothing leaks when an exception is thrown; destructors
 *   never throw.
 * - Thread safety is the C library's: one enos::Client may be used from many
 *   threads at once (its methods are const); a Builder from one at a time.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef ENOS_TOKEN_HPP
#define ENOS_TOKEN_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "enos_token.hpp needs C++17 or later (for example -std=c++17); from C or older C++, include enos_token.h"
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "enos_token.h"

namespace enos {

/** A failed call: what enos_status and the thread's last error said. */
class Error : public std::runtime_error {
 public:
  Error(enos_status status, const std::string &message, int32_t service_status,
        int32_t http_status)
      : std::runtime_error(message),
        status_(status),
        service_status_(service_status),
        http_status_(http_status) {}

  /** The status, e.g. ENOS_ERR_SERVICE. */
  enos_status status() const noexcept { return status_; }
  /** The status's name, e.g. "ENOS_ERR_SERVICE". */
  const char *status_name() const noexcept { return enos_status_name(static_cast<int32_t>(status_)); }
  /** The gateway's status code (e.g. 1203), or 0. */
  int32_t service_status() const noexcept { return service_status_; }
  /** The HTTP status of the answer, or 0. */
  int32_t http_status() const noexcept { return http_status_; }

 private:
  enos_status status_;
  int32_t service_status_;
  int32_t http_status_;
};

/** A token and its lifetime in seconds, as the gateway reported them. */
struct Token {
  std::string access_token;
  int64_t expire_s = 0;
};

/** What a client has done (see enos_client_counters in enos_token.h). */
using Counters = enos_client_counters;

/** The library's version, e.g. "0.1.0". */
inline std::string version() { return enos_version(); }

namespace detail {

struct StringDeleter {
  void operator()(char *s) const noexcept { enos_string_free(s); }
};
/** A string handed out by the library, freed when this goes away. */
using OwnedString = std::unique_ptr<char, StringDeleter>;

/** Throws the calling thread's last error for `status` (call right after the failure). */
[[noreturn]] inline void throw_last_error(enos_status status) {
  const char *message = enos_last_error_message();
  throw Error(status, message != nullptr ? message : enos_status_name(static_cast<int32_t>(status)),
              enos_last_service_status(), enos_last_http_status());
}

inline void check(enos_status status) {
  if (status != ENOS_OK) {
    throw_last_error(status);
  }
}

/** The C string for `text`, refusing embedded NULs (the C API would cut the text there). */
inline const char *c_str(const std::string &text, const char *what) {
  if (text.find('\0') != std::string::npos) {
    throw Error(ENOS_ERR_INVALID_ARGUMENT, std::string(what) + " contains a NUL byte", 0, 0);
  }
  return text.c_str();
}

/**
 * A text argument: a std::string, or a C string that may be NULL (an unset
 * environment variable, from std::getenv): NULL is an enos::Error
 * (ENOS_ERR_NULL_ARGUMENT) naming the argument, where constructing a
 * std::string from it would throw std::logic_error.
 */
class Text {
 public:
  Text(const std::string &text) : string_(&text) {}  // NOLINT: implicit on purpose
  Text(const char *text) : c_string_(text) {}         // NOLINT: implicit on purpose

  /** The C string, checked; `what` names the argument in the error. */
  const char *get(const char *what) const {
    if (string_ != nullptr) {
      return c_str(*string_, what);
    }
    if (c_string_ == nullptr) {
      throw Error(ENOS_ERR_NULL_ARGUMENT,
                  std::string(what) + " is NULL (an unset environment variable?): pass the value", 0, 0);
    }
    return c_string_;
  }

 private:
  const std::string *string_ = nullptr;
  const char *c_string_ = nullptr;
};

/** Takes ownership of `s`, copies it into a std::string and frees it. */
inline std::string take(char *s) {
  OwnedString owned(s);
  return owned ? std::string(owned.get()) : std::string();
}

struct BuilderDeleter {
  void operator()(enos_client_builder *b) const noexcept { enos_client_builder_free(b); }
};
struct ClientDeleter {
  void operator()(enos_client *c) const noexcept { enos_client_free(c); }
};
struct ResponseDeleter {
  void operator()(enos_response *r) const noexcept { enos_response_free(r); }
};
struct RequestDeleter {
  void operator()(enos_request *r) const noexcept { enos_request_free(r); }
};

/**
 * The exception a request's callback threw on this thread: callbacks run on
 * the thread that sends, so Client::send rethrows it after the call.
 */
inline std::exception_ptr &pending_exception() {
  thread_local std::exception_ptr pending;
  return pending;
}

using ReadFunction = std::function<int64_t(uint8_t *buffer, size_t capacity)>;
using WriteFunction = std::function<bool(std::string_view data)>;

inline int64_t read_trampoline(void *user_data, uint8_t *buffer, size_t capacity) {
  try {
    return (*static_cast<ReadFunction *>(user_data))(buffer, capacity);
  } catch (...) {
    pending_exception() = std::current_exception();
    return -1;
  }
}

inline int write_trampoline(void *user_data, const uint8_t *data, size_t len) {
  try {
    return (*static_cast<WriteFunction *>(user_data))(
               std::string_view(reinterpret_cast<const char *>(data), len))
               ? 0
               : 1;
  } catch (...) {
    pending_exception() = std::current_exception();
    return 1;
  }
}

/** A log callback kept alive as long as the client that calls it. */
using LogFunction = std::function<void(enos_log_level, const char *)>;

inline void log_trampoline(enos_log_level level, const char *message, void *user_data) {
  // Exceptions must not unwind into the C library.
  try {
    (*static_cast<LogFunction *>(user_data))(level, message);
  } catch (...) {
  }
}

/**
 * What one call in flight shares with the library's worker: the request's
 * callbacks (kept alive until the worker is done with them), the exception
 * one of them threw, and whether the worker is done. Freed, with the
 * enos_call, by the last of the enos::Call and the completion callback.
 */
struct CallState {
  explicit CallState(std::vector<std::shared_ptr<void>> callbacks) : keep(std::move(callbacks)) {}

  void let_go() noexcept {
    if (owners.fetch_sub(1) == 1) {
      enos_call_free(call);
      delete this;
    }
  }

  enos_call *call = nullptr;
  std::vector<std::shared_ptr<void>> keep;
  std::exception_ptr thrown;
  std::mutex mutex;
  std::condition_variable finished_signal;
  bool finished = false;
  std::atomic<bool> cancelled{false};
  std::atomic<int> owners{2};
};

/** The completion callback: on the worker, once it is done with the call. */
inline void call_finished(void *user_data, enos_call * /*call*/) noexcept {
  auto *state = static_cast<CallState *>(user_data);
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    // A callback's exception was kept on the worker's thread.
    state->thrown = std::exchange(pending_exception(), nullptr);
    state->finished = true;
  }
  state->finished_signal.notify_all();
  state->let_go();
}

}  // namespace detail

/**
 * An API's answer (any HTTP status), owning its body and headers; move-only.
 * The views it hands out stay valid as long as it lives.
 */
class Response {
 public:
  /** The HTTP status, e.g. 200 or 404. */
  int32_t status() const noexcept { return enos_response_status(handle_.get()); }

  /** The body, exactly as received. */
  std::string_view body() const noexcept {
    size_t length = 0;
    const uint8_t *bytes = enos_response_body(handle_.get(), &length);
    return bytes != nullptr ? std::string_view(reinterpret_cast<const char *>(bytes), length)
                            : std::string_view();
  }

  /**
   * Every header as (name in lower case, value), in the order received
   * (through a proxy: grouped by name, each name's values in order).
   */
  std::vector<std::pair<std::string_view, std::string_view>> headers() const {
    std::vector<std::pair<std::string_view, std::string_view>> all;
    const char *name = nullptr;
    const char *value = nullptr;
    for (size_t index = 0; enos_response_header_at(handle_.get(), index, &name, &value); index++) {
      all.emplace_back(name, value);
    }
    return all;
  }

  /** The first value of header `name` (any case), if the answer has it. */
  std::optional<std::string_view> header(const std::string &name) const {
    const char *value = enos_response_header(handle_.get(), detail::c_str(name, "header name"));
    return value != nullptr ? std::optional<std::string_view>(value) : std::nullopt;
  }

  /** How many times the call was sent: 1, more after a retry, a renewed token or a resumed download. */
  uint32_t attempts() const noexcept { return enos_response_attempts(handle_.get()); }

  /** An EnOS envelope's requestId (what support asks for), if the answer has one. */
  std::optional<std::string_view> request_id() const noexcept {
    const char *id = enos_response_request_id(handle_.get());
    return id != nullptr ? std::optional<std::string_view>(id) : std::nullopt;
  }

 private:
  friend class Client;
  friend class Call;
  explicit Response(enos_response *raw) : handle_(raw) {}
  std::unique_ptr<enos_response, detail::ResponseDeleter> handle_;
};

/** How far a call has got (see enos_progress_callback). */
struct Progress {
  uint64_t sent = 0;
  uint64_t send_total = 0;
  uint64_t received = 0;
  /** -1 when the server did not say. */
  int64_t receive_total = -1;
};

/**
 * An API call to send with Client::send(): method and path, headers, one
 * body (bytes, a file streamed from disk, or multipart parts), where the
 * answer goes, progress and a time cap. Move-only. Each setter checks its
 * arguments (throwing enos::Error naming what to fix) and returns *this.
 * Once set up it may be sent many times, from several threads at once (its
 * callbacks then run on each sending thread).
 */
class Request {
 public:
  /** `method` on `path` (path and query relative to the gateway URL). */
  Request(const std::string &method, const std::string &path) {
    enos_request *raw = nullptr;
    detail::check(enos_request_new(detail::c_str(method, "method"), detail::c_str(path, "path"), &raw));
    handle_.reset(raw);
  }

  /** Sets header `name` (Accept, Range, ...), replacing an earlier value. */
  Request &header(const std::string &name, const std::string &value) {
    detail::check(enos_request_set_header(handle_.get(), detail::c_str(name, "header name"),
                                          detail::c_str(value, "header value")));
    return *this;
  }

  /** Removes header `name`. */
  Request &remove_header(const std::string &name) {
    detail::check(enos_request_set_header(handle_.get(), detail::c_str(name, "header name"), nullptr));
    return *this;
  }

  /** The body, copied; `content_type` "" means application/json;charset=UTF-8. */
  Request &body(std::string_view bytes, const std::string &content_type = "") {
    detail::check(enos_request_set_body(handle_.get(), optional(content_type),
                                        reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
    return *this;
  }

  /** The body: the file at `path`, streamed when sent ("" content type: application/octet-stream). */
  Request &body_file(const std::string &path, const std::string &content_type = "") {
    detail::check(enos_request_set_body_file(handle_.get(), optional(content_type), detail::c_str(path, "file path")));
    return *this;
  }

  /** A multipart part holding `data` (copied); "" content type: a plain field. */
  Request &part(const std::string &name, std::string_view data, const std::string &content_type = "") {
    detail::check(enos_request_add_part(handle_.get(), detail::c_str(name, "part name"), optional(content_type),
                                        reinterpret_cast<const uint8_t *>(data.data()), data.size()));
    return *this;
  }

  /** A file part streamed from `path` ("" file name: the path's last component). */
  Request &file_part(const std::string &name, const std::string &path, const std::string &file_name = "",
                     const std::string &content_type = "") {
    detail::check(enos_request_add_file_part(handle_.get(), detail::c_str(name, "part name"), optional(file_name),
                                             optional(content_type), detail::c_str(path, "file path")));
    return *this;
  }

  /**
   * A part of exactly `length` bytes pulled from `read(buffer, capacity)` as
   * the call is sent (return the bytes written, 0 at the end, -1 to stop;
   * an exception stops the call and is rethrown by Client::send).
   */
  Request &callback_part(const std::string &name, uint64_t length, detail::ReadFunction read,
                         const std::string &file_name = "", const std::string &content_type = "") {
    auto function = std::make_shared<detail::ReadFunction>(std::move(read));
    detail::check(enos_request_add_callback_part(handle_.get(), detail::c_str(name, "part name"),
                                                 optional(file_name), optional(content_type), length,
                                                 &detail::read_trampoline, function.get()));
    keep_.push_back(std::move(function));
    return *this;
  }

  /** Writes the answer's body to `fd` as it arrives (never closed by the library). */
  Request &output_fd(int fd) {
    detail::check(enos_request_set_output_fd(handle_.get(), fd));
    return *this;
  }

  /**
   * Hands the answer's body to `write(data)` as it arrives; false (or an
   * exception, rethrown by Client::send) stops the call.
   */
  Request &output(detail::WriteFunction write) {
    auto function = std::make_shared<detail::WriteFunction>(std::move(write));
    detail::check(enos_request_set_output_callback(handle_.get(), &detail::write_trampoline, function.get()));
    keep_.push_back(std::move(function));
    return *this;
  }

  /** Reports progress at most every 100 ms and once at the end (exceptions are swallowed). */
  Request &progress(std::function<void(const Progress &)> report) {
    auto function = std::make_shared<std::function<void(const Progress &)>>(std::move(report));
    detail::check(enos_request_set_progress_callback(
        handle_.get(),
        [](void *user_data, uint64_t sent, uint64_t send_total, uint64_t received, int64_t receive_total) {
          try {
            (*static_cast<std::function<void(const Progress &)> *>(user_data))(
                Progress{sent, send_total, received, receive_total});
          } catch (...) {
          }
        },
        function.get()));
    keep_.push_back(std::move(function));
    return *this;
  }

  /** Caps the whole call, a streamed transfer included (0: no cap). */
  Request &timeout(std::chrono::milliseconds timeout) {
    detail::check(enos_request_set_timeout_ms(handle_.get(), static_cast<uint64_t>(timeout.count())));
    return *this;
  }

  /** The C request, for enos_client_send(). */
  const enos_request *get() const {
    if (!handle_) {
      throw Error(ENOS_ERR_NULL_ARGUMENT, "request was moved from", 0, 0);
    }
    return handle_.get();
  }

 private:
  static const char *optional(const std::string &text) {
    return text.empty() ? nullptr : detail::c_str(text, "argument");
  }

  friend class Client;
  std::unique_ptr<enos_request, detail::RequestDeleter> handle_;
  std::vector<std::shared_ptr<void>> keep_;
};

/**
 * A call in flight, from Client::send_async(); move-only. Its destructor
 * cancels it if it still runs (never blocking on the network). The call is
 * done when wait() returns, done() is true, or fd() is readable.
 */
class Call {
 public:
  Call(Call &&other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Call &operator=(Call &&other) noexcept {
    if (this != &other) {
      release();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  Call(const Call &) = delete;
  Call &operator=(const Call &) = delete;
  ~Call() { release(); }

  /**
   * A descriptor readable once the call is done (for poll, epoll, an event
   * loop); never read from or close it. -1 in a process forked after the
   * call started.
   */
  int fd() const noexcept { return state_ != nullptr ? enos_call_fd(state_->call) : -1; }

  /** Whether the call is done. */
  bool done() const noexcept { return state_ != nullptr && enos_call_done(state_->call); }

  /**
   * Waits until the call is done and returns its response (once; a second
   * wait throws ENOS_ERR_INVALID_ARGUMENT). Failures throw enos::Error
   * (ENOS_ERR_CANCELLED for a cancelled call); an exception thrown by one of
   * the request's callbacks is rethrown as it was.
   */
  Response wait() { return *wait_for(std::chrono::milliseconds(-1)); }

  /**
   * wait() for at most `timeout` (-1 ms: no limit); std::nullopt when the
   * call is not done by then (it goes on).
   */
  std::optional<Response> wait_for(std::chrono::milliseconds timeout) {
    enos_response *raw = nullptr;
    enos_status status = enos_call_wait(state(), static_cast<int64_t>(timeout.count()), &raw);
    if (status == ENOS_ERR_TIMEOUT && !enos_call_done(state_->call)) {
      return std::nullopt;  // the wait's own time ran out, not the call's
    }
    Response response(raw);
    // (An inherited call, in a process forked after it started, has no
    // worker here: its descriptor is -1.)
    if (status != ENOS_OK && !state_->cancelled && enos_call_fd(state_->call) >= 0) {
      // A callback's exception reaches the state when the worker is done: a
      // moment after the call, which no cancel ended early.
      std::unique_lock<std::mutex> lock(state_->mutex);
      state_->finished_signal.wait(lock, [this] { return state_->finished; });
      if (std::exception_ptr thrown = std::exchange(state_->thrown, nullptr)) {
        std::rethrow_exception(thrown);
      }
    }
    detail::check(status);
    return response;
  }

  /**
   * Cancels the call: a queued call never starts, a running call's
   * connection is shut down; it is done at once (wait() throws
   * ENOS_ERR_CANCELLED). Nothing for a call already done.
   */
  void cancel() noexcept {
    if (state_ != nullptr) {
      state_->cancelled = true;
      enos_call_cancel(state_->call);
    }
  }

 private:
  friend class Client;
  explicit Call(detail::CallState *state) : state_(state) {}

  enos_call *state() const {
    if (state_ == nullptr) {
      throw Error(ENOS_ERR_NULL_ARGUMENT, "call was moved from", 0, 0);
    }
    return state_->call;
  }

  void release() noexcept {
    if (state_ != nullptr) {
      cancel();  // a call still running stops; the worker lets go later
      std::exchange(state_, nullptr)->let_go();
    }
  }

  detail::CallState *state_ = nullptr;
};

/** A reusable, thread-safe client for one gateway and one application. */
class Client {
 public:
  /** Options for a Client. Not thread-safe. */
  class Builder {
   public:
    /** Throws enos::Error (ENOS_ERR_INVALID_ARGUMENT) for a bad URL or an empty key or secret. */
    Builder(detail::Text gateway_url, detail::Text app_key, detail::Text app_secret) {
      enos_client_builder *raw = nullptr;
      detail::check(enos_client_builder_new(gateway_url.get("gateway URL"), app_key.get("app key"),
                                            app_secret.get("app secret"), &raw));
      handle_.reset(raw);
    }

    /** Connect timeout (TCP, proxy, TLS) and overall timeout of a call. */
    Builder &timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds total) {
      detail::check(enos_client_builder_set_timeout_ms(
          handle(), static_cast<uint64_t>(connect.count()), static_cast<uint64_t>(total.count())));
      return *this;
    }

    /** Trust the PEM certificates in `pem_path` instead of the Mozilla roots. */
    Builder &ca_file(detail::Text pem_path) {
      detail::check(enos_client_builder_set_ca_file(handle(), pem_path.get("CA file")));
      return *this;
    }

    /** Use this proxy instead of the environment's; "" turns proxies off. */
    Builder &proxy(detail::Text proxy_url) {
      detail::check(enos_client_builder_set_proxy(handle(), proxy_url.get("proxy URL")));
      return *this;
    }

    /** Refresh the managed token when less than `margin` is left (default 600 s). */
    Builder &refresh_margin(std::chrono::seconds margin) {
      detail::check(enos_client_builder_set_refresh_margin_s(handle(), static_cast<uint32_t>(margin.count())));
      return *this;
    }

    /** Retries of a transient failure of the managed token (default 2, 200 ms). */
    Builder &retries(uint32_t max_retries, std::chrono::milliseconds base_backoff) {
      detail::check(enos_client_builder_set_retries(handle(), max_retries,
                                                    static_cast<uint64_t>(base_backoff.count())));
      return *this;
    }

    /** A background thread refreshes the managed token when it is due (default off). */
    Builder &background_refresh(bool enabled) {
      detail::check(enos_client_builder_set_background_refresh(handle(), enabled));
      return *this;
    }

    /** The largest API answer request() reads (default 64 MiB). */
    Builder &max_response_bytes(size_t max_bytes) {
      detail::check(enos_client_builder_set_max_response_bytes(handle(), max_bytes));
      return *this;
    }

    /** Calls of send_async() running at once (default 64); more wait in order. */
    Builder &max_concurrent_calls(uint32_t calls) {
      detail::check(enos_client_builder_set_max_concurrent_calls(handle(), calls));
      return *this;
    }

    /** Share the managed token with every process given the same directory ("" = off). */
    Builder &shared_cache(detail::Text directory) {
      detail::check(enos_client_builder_set_shared_cache(handle(), directory.get("shared cache directory")));
      return *this;
    }

    /**
     * Log messages to `log(level, message)`, called from any thread that uses
     * the client (and the library's threads running send_async() calls),
     * possibly several at once; exceptions it throws are swallowed. Kept
     * alive by the client.
     */
    Builder &log(detail::LogFunction log) {
      auto function = std::make_shared<detail::LogFunction>(std::move(log));
      detail::check(enos_client_builder_set_log_callback(handle(), &detail::log_trampoline, function.get()));
      log_ = std::move(function);
      return *this;
    }

    /** The client. The builder is used up, even when this throws. */
    Client build() {
      enos_client *raw = nullptr;
      enos_status status = enos_client_build(handle_.release(), &raw);
      detail::check(status);
      return Client(raw, std::move(log_));
    }

   private:
    enos_client_builder *handle() const {
      if (!handle_) {
        throw Error(ENOS_ERR_NULL_ARGUMENT, "builder already used by build()", 0, 0);
      }
      return handle_.get();
    }

    std::unique_ptr<enos_client_builder, detail::BuilderDeleter> handle_;
    std::shared_ptr<detail::LogFunction> log_;
  };

  Client(Client &&) noexcept = default;
  Client &operator=(Client &&other) noexcept {
    // The old client goes before the log function it may call.
    handle_ = std::move(other.handle_);
    log_ = std::move(other.log_);
    return *this;
  }
  Client(const Client &) = delete;
  Client &operator=(const Client &) = delete;

  /** Get Access Token (always a request). */
  Token get_token() const {
    char *token = nullptr;
    int64_t expire = 0;
    enos_status status = enos_client_get_token(handle(), &token, &expire);
    detail::OwnedString owned(token);
    detail::check(status);
    return Token{owned.get(), expire};
  }

  /** Refresh Access Token for `access_token` (always a request). */
  Token refresh_token(const std::string &access_token) const {
    char *token = nullptr;
    int64_t expire = 0;
    enos_status status = enos_client_refresh_token(handle(), detail::c_str(access_token, "access token"),
                                                   &token, &expire);
    detail::OwnedString owned(token);
    detail::check(status);
    return Token{owned.get(), expire};
  }

  /** A token valid now: the managed token (cached, refreshed early, shared by all threads). */
  std::string access_token() const {
    char *token = nullptr;
    enos_status status = enos_client_access_token(handle(), &token);
    detail::OwnedString owned(token);
    detail::check(status);
    return std::string(owned.get());
  }

  /** An API call rejected `rejected_token`: forget it if it is still the cached one. */
  void invalidate(const std::string &rejected_token) const {
    detail::check(enos_client_invalidate(handle(), detail::c_str(rejected_token, "token")));
  }

  /** Forget whatever token is cached. */
  void invalidate_all() const { detail::check(enos_client_invalidate(handle(), nullptr)); }

  /**
   * The three apim-* headers for an API call with this query and body, as
   * "apim-accesstoken: …\r\napim-signature: …\r\napim-timestamp: …\r\n".
   */
  std::string auth_headers(const std::string &query, std::string_view body) const {
    char *headers = nullptr;
    enos_status status =
        enos_client_auth_headers(handle(), detail::c_str(query, "query"),
                                 reinterpret_cast<const uint8_t *>(body.data()), body.size(), &headers);
    detail::OwnedString owned(headers);
    detail::check(status);
    return std::string(owned.get());
  }

  /**
   * Calls an API: `method` on `path` (path and query relative to the gateway
   * URL) with `body` and its `content_type` ("" for none), signed with the
   * managed token; a refused token is renewed and the call sent once more.
   * Any HTTP answer is returned; transport failures throw enos::Error.
   */
  Response request(const std::string &method, const std::string &path, std::string_view body = {},
                   const std::string &content_type = "") const {
    enos_response *raw = nullptr;
    enos_status status = enos_client_request(
        handle(), detail::c_str(method, "method"), detail::c_str(path, "path"),
        content_type.empty() ? nullptr : detail::c_str(content_type, "content type"),
        reinterpret_cast<const uint8_t *>(body.data()), body.size(), &raw);
    Response response(raw);
    detail::check(status);
    return response;
  }

  /**
   * Sends `request`: signed with the managed token, files streamed, the
   * answer kept or streamed to its output, a refused token renewed, a broken
   * download resumed. Any HTTP answer is returned; failures throw
   * enos::Error, and an exception thrown by one of the request's callbacks
   * is rethrown as it was.
   */
  Response send(const Request &request) const {
    enos_response *raw = nullptr;
    detail::pending_exception() = nullptr;
    enos_status status = enos_client_send(handle(), request.get(), &raw);
    Response response(raw);
    if (std::exception_ptr thrown = std::exchange(detail::pending_exception(), nullptr)) {
      std::rethrow_exception(thrown);
    }
    detail::check(status);
    return response;
  }

  /**
   * Starts `request` and returns at once: the call runs on one of the
   * library's threads, with everything send() does (see
   * enos_client_send_async). The request may be changed or destroyed right
   * after; its callbacks are kept alive by the call and run on the library's
   * thread until it is done with them.
   */
  Call send_async(const Request &request) const {
    const enos_client *client = handle();
    const enos_request *raw = request.get();
    auto *state = new detail::CallState(request.keep_);
    enos_status status = enos_client_send_async(client, raw, &detail::call_finished, state, &state->call);
    if (status != ENOS_OK) {
      delete state;  // no call: no completion
      detail::check(status);
    }
    return Call(state);
  }

  /** What the client has done so far. */
  Counters counters() const {
    Counters counters{};
    counters.struct_size = sizeof counters;
    detail::check(enos_client_get_counters(handle(), &counters));
    return counters;
  }

 private:
  Client(enos_client *raw, std::shared_ptr<detail::LogFunction> log) : log_(std::move(log)), handle_(raw) {}

  const enos_client *handle() const {
    if (!handle_) {
      throw Error(ENOS_ERR_NULL_ARGUMENT, "client was moved from", 0, 0);
    }
    return handle_.get();
  }

  // Destroyed in reverse order: the client first, then the log function it calls.
  std::shared_ptr<detail::LogFunction> log_;
  std::unique_ptr<enos_client, detail::ClientDeleter> handle_;
};

/** One-shot Get Access Token, no client. */
inline Token get_access_token(detail::Text gateway_url, detail::Text app_key, detail::Text app_secret) {
  char *token = nullptr;
  int64_t expire = 0;
  enos_status status = enos_get_access_token(gateway_url.get("gateway URL"), app_key.get("app key"),
                                             app_secret.get("app secret"), &token, &expire);
  detail::OwnedString owned(token);
  detail::check(status);
  return Token{owned.get(), expire};
}

/** One-shot Refresh Access Token, no client. */
inline Token refresh_access_token(detail::Text gateway_url, detail::Text app_key, detail::Text app_secret,
                                  const std::string &access_token) {
  char *token = nullptr;
  int64_t expire = 0;
  enos_status status = enos_refresh_access_token(gateway_url.get("gateway URL"), app_key.get("app key"),
                                                 app_secret.get("app secret"),
                                                 detail::c_str(access_token, "access token"), &token, &expire);
  detail::OwnedString owned(token);
  detail::check(status);
  return Token{owned.get(), expire};
}

/** The apim-signature of one API call, from explicit inputs. */
inline std::string sign_request(const std::string &access_token, const std::string &query, std::string_view body,
                                int64_t timestamp_ms, const std::string &app_secret) {
  char *signature = nullptr;
  enos_status status = enos_sign_request(
      detail::c_str(access_token, "access token"), detail::c_str(query, "query"),
      reinterpret_cast<const uint8_t *>(body.data()), body.size(), timestamp_ms,
      detail::c_str(app_secret, "app secret"), &signature);
  detail::OwnedString owned(signature);
  detail::check(status);
  return std::string(owned.get());
}

}  // namespace enos

#endif  // ENOS_TOKEN_HPP
