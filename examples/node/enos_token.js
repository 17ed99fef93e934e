'use strict';
// EnOS API-gateway access tokens from Node.js, through libenos_token (koffi).
//
// The library is found through the `library` argument, ENOS_TOKEN_LIB, the
// copy packed inside this package (native/), a checkout's target/, then the
// system loader (libenos_token.so); a failure names every place tried. Owned
// strings come back through a disposable type that koffi frees with
// enos_string_free (also for NULL outputs, which the library accepts).

const koffi = require('koffi');

const STATUS_NAMES = [
  'ENOS_OK', 'ENOS_ERR_NULL_ARGUMENT', 'ENOS_ERR_INVALID_ARGUMENT', 'ENOS_ERR_CONNECT',
  'ENOS_ERR_TIMEOUT', 'ENOS_ERR_TLS', 'ENOS_ERR_HTTP_STATUS', 'ENOS_ERR_BAD_RESPONSE',
  'ENOS_ERR_SERVICE', 'ENOS_ERR_INTERNAL',
];

/** A failed call: status (number and name), gateway and HTTP status, message. */
class EnosError extends Error {
  constructor(message, status, serviceStatus, httpStatus) {
    super(message);
    this.name = 'EnosError';
    this.status = status;
    this.statusName = STATUS_NAMES[status] || 'ENOS_UNKNOWN';
    this.serviceStatus = serviceStatus;
    this.httpStatus = httpStatus;
  }
}

const libraries = new Map();

/** The log callback's C type (koffi type names are global: declared once). */
const LogCallback = koffi.proto('void EnosLogCallback(int level, const char *message, void *user_data)');

const fs = require('node:fs');
const nodePath = require('node:path');

/** Where to look for the library, in order: [description, path]. */
function candidates(library) {
  if (library) return [['the library argument', library]];
  if (process.env.ENOS_TOKEN_LIB) return [['ENOS_TOKEN_LIB', process.env.ENOS_TOKEN_LIB]];
  const checkout = nodePath.join(__dirname, '..', '..', 'target');
  return [
    ['this package', nodePath.join(__dirname, 'native', 'libenos_token.so')],
    ['the checkout\'s target/debug', nodePath.join(checkout, 'debug', 'libenos_token.so')],
    ['the checkout\'s target/release', nodePath.join(checkout, 'release', 'libenos_token.so')],
    ['the system loader', 'libenos_token.so'],
  ];
}

/** libenos_token could not be loaded; the message names every place tried. */
class LibraryNotFoundError extends Error {}

function load(library) {
  const tried = [];
  for (const [where, path] of candidates(library)) {
    if (libraries.has(path)) return libraries.get(path);
    if (path.includes('/') && !fs.existsSync(path)) {
      tried.push(`${where} (${path}: no such file)`);
      continue;
    }
    try {
      return declare(path, koffi.load(path));
    } catch (error) {
      tried.push(`${where} (${error.message})`);
    }
  }
  throw new LibraryNotFoundError(`cannot load libenos_token; tried ${tried.join('; ')}. `
    + 'Install the enos-token package, or set ENOS_TOKEN_LIB to the library\'s path');
}

function declare(path, lib) {
  const free = lib.func('void enos_string_free(void *s)');
  // A unique type name per loaded library: koffi type names are global.
  const OwnedStr = koffi.disposable(`EnosOwnedStr${libraries.size}`, 'str', free);
  const owned = koffi.out(koffi.pointer(OwnedStr));
  const Counters = koffi.struct(`EnosCounters${libraries.size}`, {
    struct_size: 'size_t',
    get_requests: 'uint64_t',
    refresh_requests: 'uint64_t',
    retries: 'uint64_t',
    failures: 'uint64_t',
    waits: 'uint64_t',
    cache_hits: 'uint64_t',
    dns_lookups: 'uint64_t',
    api_calls: 'uint64_t',
    token_renewals: 'uint64_t',
  });
  const f = (ret, name, args) => lib.func(name, ret, args);
  const api = {
    lastErrorMessage: f('str', 'enos_last_error_message', []),
    statusName: f('str', 'enos_status_name', ['int32_t']),
    lastServiceStatus: f('int32_t', 'enos_last_service_status', []),
    lastHttpStatus: f('int32_t', 'enos_last_http_status', []),
    version: f('str', 'enos_version', []),
    get: f('int', 'enos_get_access_token', ['str', 'str', 'str', owned, koffi.out('int64_t *')]),
    refresh: f('int', 'enos_refresh_access_token', ['str', 'str', 'str', 'str', owned, koffi.out('int64_t *')]),
    builderNew: f('int', 'enos_client_builder_new', ['str', 'str', 'str', koffi.out('void **')]),
    setTimeout: f('int', 'enos_client_builder_set_timeout_ms', ['void *', 'uint64_t', 'uint64_t']),
    setProxy: f('int', 'enos_client_builder_set_proxy', ['void *', 'str']),
    setCaFile: f('int', 'enos_client_builder_set_ca_file', ['void *', 'str']),
    setRefreshMargin: f('int', 'enos_client_builder_set_refresh_margin_s', ['void *', 'uint32_t']),
    setRetries: f('int', 'enos_client_builder_set_retries', ['void *', 'uint32_t', 'uint64_t']),
    setBackgroundRefresh: f('int', 'enos_client_builder_set_background_refresh', ['void *', 'bool']),
    setSharedCache: f('int', 'enos_client_builder_set_shared_cache', ['void *', 'str']),
    setLogCallback: f('int', 'enos_client_builder_set_log_callback',
      ['void *', koffi.pointer(LogCallback), 'void *']),
    build: f('int', 'enos_client_build', ['void *', koffi.out('void **')]),
    builderFree: f('void', 'enos_client_builder_free', ['void *']),
    clientFree: f('void', 'enos_client_free', ['void *']),
    clientGet: f('int', 'enos_client_get_token', ['void *', owned, koffi.out('int64_t *')]),
    clientRefresh: f('int', 'enos_client_refresh_token', ['void *', 'str', owned, koffi.out('int64_t *')]),
    accessToken: f('int', 'enos_client_access_token', ['void *', owned]),
    invalidate: f('int', 'enos_client_invalidate', ['void *', 'str']),
    authHeaders: f('int', 'enos_client_auth_headers', ['void *', 'str', 'void *', 'size_t', owned]),
    getCounters: f('int', 'enos_client_get_counters', ['void *', koffi.inout(koffi.pointer(Counters))]),
    signRequest: f('int', 'enos_sign_request',
      ['str', 'str', 'void *', 'size_t', 'int64_t', 'str', owned]),
    setMaxResponseBytes: f('int', 'enos_client_builder_set_max_response_bytes', ['void *', 'size_t']),
    request: f('int', 'enos_client_request',
      ['void *', 'str', 'str', 'str', 'void *', 'size_t', koffi.out('void **')]),
    responseStatus: f('int32_t', 'enos_response_status', ['void *']),
    responseBody: f('void *', 'enos_response_body', ['void *', koffi.out('size_t *')]),
    responseHeader: f('str', 'enos_response_header', ['void *', 'str']),
    responseHeaderAt: f('bool', 'enos_response_header_at',
      ['void *', 'size_t', koffi.out('const char **'), koffi.out('const char **')]),
    responseFree: f('void', 'enos_response_free', ['void *']),
    countersSize: koffi.sizeof(Counters),
  };
  libraries.set(path, api);
  return api;
}

function check(api, status) {
  if (status === 0) return;
  const message = api.lastErrorMessage() || api.statusName(status);
  throw new EnosError(message, status, api.lastServiceStatus(), api.lastHttpStatus());
}

/** One-shot Get Access Token. Synchronous: it blocks like the C call. */
function getAccessToken(gatewayUrl, appKey, appSecret, library) {
  const api = load(library);
  const token = [null];
  const expire = [0];
  check(api, api.get(gatewayUrl, appKey, appSecret, token, expire));
  return { accessToken: token[0], expireS: Number(expire[0]) };
}

/** One-shot Refresh Access Token. */
function refreshAccessToken(gatewayUrl, appKey, appSecret, accessToken, library) {
  const api = load(library);
  const token = [null];
  const expire = [0];
  check(api, api.refresh(gatewayUrl, appKey, appSecret, accessToken, token, expire));
  return { accessToken: token[0], expireS: Number(expire[0]) };
}

/** A reusable client; call close() when done. */
class Client {
  constructor(gatewayUrl, appKey, appSecret, options = {}) {
    this.api = load(options.library);
    const builder = [null];
    check(this.api, this.api.builderNew(gatewayUrl, appKey, appSecret, builder));
    try {
      if (options.connectTimeoutMs !== undefined || options.totalTimeoutMs !== undefined) {
        check(this.api, this.api.setTimeout(builder[0], options.connectTimeoutMs ?? 10000,
          options.totalTimeoutMs ?? 30000));
      }
      if (options.proxy !== undefined) check(this.api, this.api.setProxy(builder[0], options.proxy));
      if (options.caFile !== undefined) check(this.api, this.api.setCaFile(builder[0], options.caFile));
      if (options.refreshMarginS !== undefined) {
        check(this.api, this.api.setRefreshMargin(builder[0], options.refreshMarginS));
      }
      if (options.retries !== undefined) {
        check(this.api, this.api.setRetries(builder[0], options.retries.maxRetries,
          options.retries.baseBackoffMs));
      }
      if (options.backgroundRefresh) check(this.api, this.api.setBackgroundRefresh(builder[0], true));
      if (options.sharedCache !== undefined) {
        check(this.api, this.api.setSharedCache(builder[0], options.sharedCache));
      }
      if (options.maxResponseBytes !== undefined) {
        check(this.api, this.api.setMaxResponseBytes(builder[0], options.maxResponseBytes));
      }
      if (options.log) {
        // With background refresh the library would log from its own thread,
        // which koffi can only queue to this one: closing the client while a
        // message waits would deadlock. Without it, every message comes
        // during a call, on this thread.
        if (options.backgroundRefresh) {
          throw new EnosError('log and backgroundRefresh cannot be combined in Node.js', 2, 0, 0);
        }
        const log = options.log;
        this.logCallback = koffi.register((level, message) => {
          try { log(level, message); } catch (_) { /* never unwind into C */ }
        }, koffi.pointer(LogCallback));
        check(this.api, this.api.setLogCallback(builder[0], this.logCallback, null));
      }
    } catch (error) {
      this.api.builderFree(builder[0]);
      if (this.logCallback) koffi.unregister(this.logCallback);
      throw error;
    }
    const client = [null];
    check(this.api, this.api.build(builder[0], client)); // consumes the builder
    this.handle = client[0];
  }

  getToken() {
    const token = [null];
    const expire = [0];
    check(this.api, this.api.clientGet(this.live(), token, expire));
    return { accessToken: token[0], expireS: Number(expire[0]) };
  }

  refreshToken(accessToken) {
    const token = [null];
    const expire = [0];
    check(this.api, this.api.clientRefresh(this.live(), accessToken, token, expire));
    return { accessToken: token[0], expireS: Number(expire[0]) };
  }

  /** A token valid now (cached, refreshed early). */
  accessToken() {
    const token = [null];
    check(this.api, this.api.accessToken(this.live(), token));
    return token[0];
  }

  /** An API call rejected `token` (or, with none, whatever is cached): forget it. */
  invalidate(token = null) {
    check(this.api, this.api.invalidate(this.live(), token));
  }

  /**
   * The apim-* headers for an API call with the managed token, as an object;
   * `query` is the URL's query string, `body` the JSON body (string or Buffer).
   */
  authHeaders(query = '', body = '') {
    const bytes = Buffer.from(body);
    const headers = [null];
    check(this.api, this.api.authHeaders(this.live(), query, bytes.length ? bytes : null,
      bytes.length, headers));
    return Object.fromEntries(headers[0].split('\r\n').filter((line) => line)
      .map((line) => line.split(': ')));
  }

  /**
   * Calls an API: `method` on `path` (path and query relative to the gateway
   * URL), signed with the managed token over exactly the query and body sent;
   * a refused token is renewed and the call sent once more. `options.json`
   * is serialised once and sent as application/json; `options.body` (string
   * or Buffer) is sent as it is, with `options.contentType`. Any HTTP status
   * is returned as `{status, body, headers, text(), json()}`; `headers` has
   * lower-case names (the first value of each). Synchronous.
   */
  request(method, path, options = {}) {
    let { body, contentType } = options;
    if (options.json !== undefined) {
      if (body !== undefined) throw new EnosError('give body or json, not both', 2, 0, 0);
      body = JSON.stringify(options.json);
      contentType = contentType ?? 'application/json;charset=UTF-8';
    }
    const bytes = Buffer.from(body ?? '');
    const out = [null];
    check(this.api, this.api.request(this.live(), method, path, contentType ?? null,
      bytes.length ? bytes : null, bytes.length, out));
    const response = out[0];
    try {
      const length = [0];
      const pointer = this.api.responseBody(response, length);
      const size = Number(length[0]);
      const content = size ? Buffer.from(koffi.decode(pointer, 'uint8_t', size)) : Buffer.alloc(0);
      const headers = {};
      const name = [null];
      const value = [null];
      for (let index = 0; this.api.responseHeaderAt(response, index, name, value); index++) {
        if (!(name[0] in headers)) headers[name[0]] = value[0];
      }
      return {
        status: this.api.responseStatus(response),
        body: content,
        headers,
        text() { return content.toString('utf8'); },
        json() { return JSON.parse(content.toString('utf8')); },
      };
    } finally {
      this.api.responseFree(response);
    }
  }

  /** What the client has done: requests, retries, failures, waits, cache hits, DNS lookups. */
  counters() {
    const counters = { struct_size: this.api.countersSize };
    check(this.api, this.api.getCounters(this.live(), counters));
    const { struct_size: _, ...values } = counters;
    return Object.fromEntries(Object.entries(values).map(([name, value]) => [name, Number(value)]));
  }

  live() {
    if (!this.handle) throw new EnosError('client is closed', 1, 0, 0);
    return this.handle;
  }

  close() {
    if (this.handle) this.api.clientFree(this.handle);
    this.handle = null;
    if (this.logCallback) koffi.unregister(this.logCallback);
    this.logCallback = null;
  }
}

/** The apim-signature of an API call (see enos_sign_request in enos_token.h). */
function signRequest(accessToken, query, body, timestampMs, appSecret, library) {
  const api = load(library);
  const bytes = Buffer.from(body || '');
  const signature = [null];
  check(api, api.signRequest(accessToken, query, bytes.length ? bytes : null, bytes.length,
    timestampMs, appSecret, signature));
  return signature[0];
}

module.exports = {
  Client, EnosError, LibraryNotFoundError, getAccessToken, refreshAccessToken, signRequest,
  version: (library) => load(library).version(),
};
