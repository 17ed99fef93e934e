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
  'ENOS_ERR_SERVICE', 'ENOS_ERR_INTERNAL', 'ENOS_ERR_CANCELLED', 'ENOS_ERR_IO',
];

/** A failed call: status (number and name), gateway and HTTP status, message. */
class EnosError extends Error {
  constructor(message, status, serviceStatus, httpStatus, options) {
    super(message, options);
    this.name = 'EnosError';
    this.status = status;
    this.statusName = STATUS_NAMES[status] || 'ENOS_UNKNOWN';
    this.serviceStatus = serviceStatus;
    this.httpStatus = httpStatus;
  }
}

const libraries = new Map();

/** The callbacks' C types (koffi type names are global: declared once). */
const LogCallback = koffi.proto('void EnosLogCallback(int level, const char *message, void *user_data)');
const ReadCallback = koffi.proto('int64_t EnosReadCallback(void *user_data, uint8_t *buffer, size_t capacity)');
// The call's id travels as user_data: an integer the size of a pointer.
const CompletionCallback = koffi.proto('void EnosCompletionCallback(intptr_t user_data, void *call)');
const ProgressCallback = koffi.proto(
  'void EnosProgressCallback(void *user_data, uint64_t sent, uint64_t send_total, uint64_t received, '
  + 'int64_t receive_total)');

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
    api_retries: 'uint64_t',
    api_retries_denied: 'uint64_t',
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
    responseAttempts: f('uint32_t', 'enos_response_attempts', ['void *']),
    responseRequestId: f('str', 'enos_response_request_id', ['void *']),
    requestNew: f('int', 'enos_request_new', ['str', 'str', koffi.out('void **')]),
    requestSetHeader: f('int', 'enos_request_set_header', ['void *', 'str', 'str']),
    requestSetBody: f('int', 'enos_request_set_body', ['void *', 'str', 'void *', 'size_t']),
    requestSetBodyFile: f('int', 'enos_request_set_body_file', ['void *', 'str', 'str']),
    requestAddPart: f('int', 'enos_request_add_part', ['void *', 'str', 'str', 'void *', 'size_t']),
    requestAddFilePart: f('int', 'enos_request_add_file_part', ['void *', 'str', 'str', 'str', 'str']),
    requestAddCallbackPart: f('int', 'enos_request_add_callback_part',
      ['void *', 'str', 'str', 'str', 'uint64_t', koffi.pointer(ReadCallback), 'void *']),
    requestSetOutputFd: f('int', 'enos_request_set_output_fd', ['void *', 'int']),
    requestSetOutputCallback: f('int', 'enos_request_set_output_callback', ['void *', 'void *', 'void *']),
    requestSetProgressCallback: f('int', 'enos_request_set_progress_callback',
      ['void *', koffi.pointer(ProgressCallback), 'void *']),
    requestSetTimeoutMs: f('int', 'enos_request_set_timeout_ms', ['void *', 'uint64_t']),
    requestFree: f('void', 'enos_request_free', ['void *']),
    send: f('int', 'enos_client_send', ['void *', 'void *', koffi.out('void **')]),
    setMaxConcurrentCalls: f('int', 'enos_client_builder_set_max_concurrent_calls', ['void *', 'uint32_t']),
    sendAsync: f('int', 'enos_client_send_async',
      ['void *', 'void *', koffi.pointer(CompletionCallback), 'intptr_t', koffi.out('void **')]),
    callFd: f('int', 'enos_call_fd', ['void *']),
    callDone: f('bool', 'enos_call_done', ['void *']),
    callWait: f('int', 'enos_call_wait', ['void *', 'int64_t', koffi.out('void **')]),
    callCancel: f('int', 'enos_call_cancel', ['void *']),
    callFree: f('void', 'enos_call_free', ['void *']),
    countersSize: koffi.sizeof(Counters),
  };
  api.calls = new CallsInFlight(api);
  libraries.set(path, api);
  return api;
}

/**
 * The library's calls in flight from this thread (one set per loaded
 * library). A call's completion callback runs on a library thread; koffi
 * queues it to the event loop, where it settles the call's Promise. While a
 * call is in flight a timer keeps the process alive (koffi's queue does not),
 * and at exit the calls still in flight are freed, so that no callback comes
 * while Node tears down.
 */
class CallsInFlight {
  constructor(api) {
    this.api = api;
    this.pending = new Map();
    this.nextId = 1;
    this.keepAlive = null;
    this.completion = koffi.register((id, call) => this.completed(Number(id), call),
      koffi.pointer(CompletionCallback));
    process.once('exit', () => {
      for (const entry of this.pending.values()) api.callFree(entry.call);
      this.pending.clear();
    });
  }

  /**
   * Starts `built` on the client; settles through `resolve`/`reject`, then
   * calls `done()` (the call no longer uses the client's callbacks).
   */
  start(client, built, { signal, resolve, reject, done }) {
    const id = this.nextId++;
    const entry = { built, resolve, reject, done, signal, call: null, settled: false, onAbort: null };
    const out = [null];
    const status = this.api.sendAsync(client, built.handle, this.completion, id, out);
    if (status !== 0) {
      built.release();
      check(this.api, status);
    }
    entry.call = out[0];
    this.pending.set(id, entry);
    if (!this.keepAlive) this.keepAlive = setInterval(() => {}, 0x7fffffff);
    if (signal) {
      entry.onAbort = () => {
        this.api.callCancel(entry.call); // done at once: settle now
        this.settle(entry);
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
  }

  /** The completion callback, on the event loop: settle, then free. */
  completed(id, call) {
    const entry = this.pending.get(id);
    if (!entry) return; // freed at exit
    this.pending.delete(id);
    this.settle(entry);
    if (entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    this.api.callFree(call);
    entry.built.release(); // the worker is done with its callbacks and files
    entry.done();
    if (this.pending.size === 0 && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  /** Takes the call's outcome (it is done) and settles its Promise, once. */
  settle(entry) {
    if (entry.settled) return;
    entry.settled = true;
    const out = [null];
    const status = this.api.callWait(entry.call, 0, out);
    try {
      check(this.api, status);
      entry.resolve(readResponse(this.api, out[0]));
    } catch (error) {
      if (entry.signal && entry.signal.aborted && error.status === 10) error.cause = entry.signal.reason;
      entry.reject(error);
    }
  }
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
    this.inFlight = 0;
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
      if (options.maxConcurrentCalls !== undefined) {
        check(this.api, this.api.setMaxConcurrentCalls(builder[0], options.maxConcurrentCalls));
      }
      if (options.log) {
        // With background refresh the library would log from its refresher
        // thread, which koffi can only queue to this one: closing the client
        // (which joins that thread) while a message waits would deadlock.
        // Messages of calls in flight come from workers nothing joins: koffi
        // queues them to this thread, and the callback stays registered until
        // the last call is done.
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
   * URL), signed with the managed token over exactly the query sent (and the
   * body, when it is JSON); a refused token is renewed and the call sent once
   * more. Returns a Promise and never blocks the event loop: the call runs on
   * one of the library's threads (at most `maxConcurrentCalls` at once, 64 by
   * default, more are queued), and its completion comes back to the event
   * loop. Options:
   * - `json`: a value, serialised once and sent as application/json; or
   *   `body` (string or Buffer), sent as it is, of `contentType` (default JSON);
   * - `parts`: multipart/form-data parts, `[{name, file}]` (a path, streamed
   *   from disk) or `[{name, data}]` (string or Buffer), each with an optional
   *   `filename` and `contentType`; every part carries its own Content-Length;
   * - `headers`: other headers (`Accept`, `Range`, ...);
   * - `output`: a path or an open file descriptor the answer's body is written
   *   to as it arrives (`body` is then empty); a GET resumes by itself when
   *   the connection breaks mid-body;
   * - `onProgress(sent, sendTotal, received, receiveTotal)`: at most every
   *   100 ms and once at the end (`receiveTotal` -1 when unknown);
   * - `timeoutMs`: a cap on the whole call, a streamed transfer included;
   * - `signal`: an AbortSignal; aborting cancels the call (a running call's
   *   connection is shut down) and rejects with an EnosError of status
   *   ENOS_ERR_CANCELLED whose `cause` is the signal's reason.
   * Any HTTP status resolves to `{status, body, headers, attempts, requestId,
   * text(), json()}`; `headers` has lower-case names (the first value of each).
   */
  request(method, path, options = {}) {
    return new Promise((resolve, reject) => {
      const live = this.live();
      const { signal } = options;
      if (signal && signal.aborted) {
        throw new EnosError(`${method} ${path}: aborted before it started`, 10, 0, 0,
          { cause: signal.reason });
      }
      const built = buildRequest(this.api, method, path, options);
      this.api.calls.start(live, built, {
        signal, resolve, reject, done: () => { this.inFlight -= 1; this.releaseLog(); },
      });
      this.inFlight += 1;
    });
  }

  /**
   * `request()`, blocking: the event loop waits for the gateway. For scripts
   * and command lines; a server wants `await request()`. Takes the same
   * options but `signal`.
   */
  requestSync(method, path, options = {}) {
    const live = this.live();
    const built = buildRequest(this.api, method, path, options);
    try {
      const out = [null];
      check(this.api, this.api.send(live, built.handle, out));
      return readResponse(this.api, out[0]);
    } finally {
      built.release();
    }
  }

  /** What the client has done: requests, retries, failures, waits, cache hits, DNS lookups. */
  counters() {
    const counters = { struct_size: this.api.countersSize };
    check(this.api, this.api.getCounters(this.live(), counters));
    const { struct_size: _, ...values } = counters;
    // camelCase, as the rest of the Node API: get_requests → getRequests.
    const camel = (name) => name.replace(/_([a-z])/g, (_all, letter) => letter.toUpperCase());
    return Object.fromEntries(Object.entries(values).map(([name, value]) => [camel(name), Number(value)]));
  }

  live() {
    if (!this.handle) throw new EnosError('client is closed', 1, 0, 0);
    return this.handle;
  }

  /**
   * Frees the client. Calls in flight are cancelled: their Promises reject
   * with ENOS_ERR_CANCELLED.
   */
  close() {
    if (this.handle) this.api.clientFree(this.handle);
    this.handle = null;
    this.releaseLog();
  }

  /** The log callback goes once the client is closed and no call can log. */
  releaseLog() {
    if (this.handle || this.inFlight > 0 || !this.logCallback) return;
    koffi.unregister(this.logCallback);
    this.logCallback = null;
  }
}

/** Copies an enos_response into a plain object, then frees it. */
function readResponse(api, response) {
  try {
    const length = [0];
    const pointer = api.responseBody(response, length);
    const size = Number(length[0]);
    const content = size ? Buffer.from(koffi.decode(pointer, 'uint8_t', size)) : Buffer.alloc(0);
    const headers = {};
    const name = [null];
    const value = [null];
    for (let index = 0; api.responseHeaderAt(response, index, name, value); index++) {
      if (!(name[0] in headers)) headers[name[0]] = value[0];
    }
    return {
      status: api.responseStatus(response),
      body: content,
      headers,
      attempts: api.responseAttempts(response),
      requestId: api.responseRequestId(response) ?? null,
      text() { return content.toString('utf8'); },
      json() { return JSON.parse(content.toString('utf8')); },
    };
  } finally {
    api.responseFree(response);
  }
}

/**
 * An enos_request for `options` (see Client#request), with what it needs
 * kept alive (registered callbacks, opened files) until `release()`.
 */
function buildRequest(api, method, path, options) {
  const handle = [null];
  check(api, api.requestNew(method, path, handle));
  const callbacks = [];
  const fds = [];
  const release = () => {
    api.requestFree(handle[0]);
    for (const callback of callbacks) koffi.unregister(callback);
    for (const fd of fds) fs.closeSync(fd);
  };
  try {
    const call = (result) => check(api, result);
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      call(api.requestSetHeader(handle[0], name, String(value)));
    }
    let { body, contentType } = options;
    if (options.json !== undefined) {
      if (body !== undefined) throw new EnosError('give body or json, not both', 2, 0, 0);
      body = JSON.stringify(options.json);
      contentType = contentType ?? 'application/json;charset=UTF-8';
    }
    if (options.parts !== undefined) {
      if (body !== undefined) throw new EnosError('give body/json or parts, not both', 2, 0, 0);
      for (const part of options.parts) addPart(api, handle[0], part, callbacks);
    } else if (body !== undefined) {
      const bytes = Buffer.from(body);
      call(api.requestSetBody(handle[0], contentType ?? null, bytes.length ? bytes : null, bytes.length));
    }
    if (typeof options.output === 'string') {
      const fd = fs.openSync(options.output, 'w');
      fds.push(fd);
      call(api.requestSetOutputFd(handle[0], fd));
    } else if (typeof options.output === 'number') {
      call(api.requestSetOutputFd(handle[0], options.output));
    } else if (options.output !== undefined) {
      throw new EnosError('output is a path or a file descriptor', 2, 0, 0);
    }
    if (options.onProgress) {
      const report = options.onProgress;
      const callback = koffi.register((_user, sent, sendTotal, received, receiveTotal) => {
        try {
          report(Number(sent), Number(sendTotal), Number(received), Number(receiveTotal));
        } catch (_) { /* never unwind into C */ }
      }, koffi.pointer(ProgressCallback));
      callbacks.push(callback);
      call(api.requestSetProgressCallback(handle[0], callback, null));
    }
    if (options.timeoutMs !== undefined) call(api.requestSetTimeoutMs(handle[0], options.timeoutMs));
  } catch (error) {
    release();
    throw error;
  }
  return { handle: handle[0], release };
}

/** One multipart part: `{name, file}` or `{name, data}`, with `filename` and `contentType`. */
function addPart(api, request, part, callbacks) {
  if (typeof part.name !== 'string') throw new EnosError('a part needs a name', 2, 0, 0);
  if (part.file !== undefined) {
    check(api, api.requestAddFilePart(request, part.name, part.filename ?? null, part.contentType ?? null,
      part.file));
    return;
  }
  const bytes = Buffer.from(part.data ?? '');
  if (part.filename === undefined) {
    check(api, api.requestAddPart(request, part.name, part.contentType ?? null,
      bytes.length ? bytes : null, bytes.length));
    return;
  }
  // Bytes with a file name: pulled from memory as the call is sent.
  let offset = 0;
  const callback = koffi.register((_user, buffer, capacity) => {
    const n = Math.min(Number(capacity), bytes.length - offset);
    if (n > 0) koffi.encode(buffer, 'uint8_t', Array.from(bytes.subarray(offset, offset + n)), n);
    offset += n;
    return n;
  }, koffi.pointer(ReadCallback));
  callbacks.push(callback);
  check(api, api.requestAddCallbackPart(request, part.name, part.filename, part.contentType ?? null,
    bytes.length, callback, null));
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
