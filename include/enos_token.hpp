/*
 * enos_token.hpp: a header-only C++17 wrapper over enos_token.h.
 *
 * - enos::Client: move-only, RAII, built with enos::Client::Builder.
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

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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

/** A log callback kept alive as long as the client that calls it. */
using LogFunction = std::function<void(enos_log_level, const char *)>;

inline void log_trampoline(enos_log_level level, const char *message, void *user_data) {
  // Exceptions must not unwind into the C library.
  try {
    (*static_cast<LogFunction *>(user_data))(level, message);
  } catch (...) {
  }
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

  /** Every header as (name in lower case, value), in the order received. */
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

 private:
  friend class Client;
  explicit Response(enos_response *raw) : handle_(raw) {}
  std::unique_ptr<enos_response, detail::ResponseDeleter> handle_;
};

/** A reusable, thread-safe client for one gateway and one application. */
class Client {
 public:
  /** Options for a Client. Not thread-safe. */
  class Builder {
   public:
    /** Throws enos::Error (ENOS_ERR_INVALID_ARGUMENT) for a bad URL or an empty key or secret. */
    Builder(const std::string &gateway_url, const std::string &app_key, const std::string &app_secret) {
      enos_client_builder *raw = nullptr;
      detail::check(enos_client_builder_new(detail::c_str(gateway_url, "gateway URL"),
                                            detail::c_str(app_key, "app key"),
                                            detail::c_str(app_secret, "app secret"), &raw));
      handle_.reset(raw);
    }

    /** Connect timeout (TCP, proxy, TLS) and overall timeout of a call. */
    Builder &timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds total) {
      detail::check(enos_client_builder_set_timeout_ms(
          handle(), static_cast<uint64_t>(connect.count()), static_cast<uint64_t>(total.count())));
      return *this;
    }

    /** Trust the PEM certificates in `pem_path` instead of the Mozilla roots. */
    Builder &ca_file(const std::string &pem_path) {
      detail::check(enos_client_builder_set_ca_file(handle(), detail::c_str(pem_path, "CA file")));
      return *this;
    }

    /** Use this proxy instead of the environment's; "" turns proxies off. */
    Builder &proxy(const std::string &proxy_url) {
      detail::check(enos_client_builder_set_proxy(handle(), detail::c_str(proxy_url, "proxy URL")));
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

    /** Share the managed token with every process given the same directory ("" = off). */
    Builder &shared_cache(const std::string &directory) {
      detail::check(enos_client_builder_set_shared_cache(handle(), detail::c_str(directory, "shared cache directory")));
      return *this;
    }

    /**
     * Log messages to `log(level, message)`, called from any thread that uses
     * the client; exceptions it throws are swallowed. Kept alive by the client.
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
inline Token get_access_token(const std::string &gateway_url, const std::string &app_key,
                              const std::string &app_secret) {
  char *token = nullptr;
  int64_t expire = 0;
  enos_status status = enos_get_access_token(detail::c_str(gateway_url, "gateway URL"),
                                             detail::c_str(app_key, "app key"),
                                             detail::c_str(app_secret, "app secret"), &token, &expire);
  detail::OwnedString owned(token);
  detail::check(status);
  return Token{owned.get(), expire};
}

/** One-shot Refresh Access Token, no client. */
inline Token refresh_access_token(const std::string &gateway_url, const std::string &app_key,
                                  const std::string &app_secret, const std::string &access_token) {
  char *token = nullptr;
  int64_t expire = 0;
  enos_status status = enos_refresh_access_token(
      detail::c_str(gateway_url, "gateway URL"), detail::c_str(app_key, "app key"),
      detail::c_str(app_secret, "app secret"), detail::c_str(access_token, "access token"), &token, &expire);
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
