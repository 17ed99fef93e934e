// Type declarations of the enos-token package (enos_token.js). They need no
// other package's types (not even @types/node): bytes are Uint8Array, which a
// Node.js Buffer is, and a signal is anything shaped like an AbortSignal.

/** Bytes: a Uint8Array (a Node.js Buffer is one). */
export type Bytes = Uint8Array;

/** What `request()` needs of an AbortSignal (a real one fits). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A failed call: the status, the gateway's and the HTTP status, the library's message. */
export class EnosError extends Error {
  status: number;
  statusName: string;
  serviceStatus: number;
  httpStatus: number;
}

/** libenos_token could not be loaded; the message names every place tried. */
export class LibraryNotFoundError extends Error {}

export interface Token {
  accessToken: string;
  /** Seconds until it expires, as the gateway said. */
  expireS: number;
}

export interface ClientOptions {
  /** Path of libenos_token.so (default: ENOS_TOKEN_LIB, the package's copy, the system). */
  library?: string;
  connectTimeoutMs?: number;
  totalTimeoutMs?: number;
  /** PEM file of the CA to trust instead of the built-in roots. */
  caFile?: string;
  /** Proxy URL; "" turns proxies off (default: the environment, as libcurl). */
  proxy?: string;
  refreshMarginS?: number;
  retries?: { maxRetries: number; baseBackoffMs: number };
  /** A thread of the client refreshes due tokens. */
  backgroundRefresh?: boolean;
  /** A private directory through which processes share one token. */
  sharedCache?: string;
  /** The largest API answer request() reads (default 64 MiB). */
  maxResponseBytes?: number;
  /** Calls request() runs at once (default 64); more wait in a queue. */
  maxConcurrentCalls?: number;
  /** Log messages (1 error, 2 warning, 3 info, 4 debug); not with backgroundRefresh. */
  log?: (level: number, message: string) => void;
}

export interface Counters {
  getRequests: number;
  refreshRequests: number;
  retries: number;
  failures: number;
  waits: number;
  cacheHits: number;
  dnsLookups: number;
  apiCalls: number;
  tokenRenewals: number;
  apiRetries: number;
  apiRetriesDenied: number;
}

/** One multipart/form-data part: a file (streamed from disk) or data. */
export type Part =
  | { name: string; file: string; filename?: string; contentType?: string }
  | { name: string; data: string | Bytes; filename?: string; contentType?: string };

export interface RequestOptions {
  /** The body, sent exactly as given. */
  body?: string | Bytes;
  /** Serialised once with JSON.stringify and sent as application/json. */
  json?: unknown;
  /** The body's Content-Type (default application/json;charset=UTF-8). */
  contentType?: string;
  /** A multipart/form-data body; each part carries its own Content-Length. */
  parts?: Part[];
  /** Other headers (Accept, Range, ...); never apim-*, Content-Type or Content-Length. */
  headers?: Record<string, string>;
  /** A path or an open file descriptor the answer's body is written to as it arrives. */
  output?: string | number;
  /** At most every 100 ms and once at the end; receiveTotal is -1 when unknown. */
  onProgress?: (sent: number, sendTotal: number, received: number, receiveTotal: number) => void;
  /** A cap on the whole call, a streamed transfer included. */
  timeoutMs?: number;
  /**
   * request() only: aborting cancels the call (a running call's connection is
   * shut down); the Promise rejects with an EnosError of statusName
   * ENOS_ERR_CANCELLED whose `cause` is the signal's reason.
   */
  signal?: AbortSignalLike;
}

/** An API's answer, whatever its HTTP status. */
export interface Response {
  status: number;
  /** Empty when the body went to `output`. */
  /** A Node.js Buffer. */
  body: Bytes;
  /** Lower-case names; the first value of each. */
  headers: Record<string, string>;
  /** Sends made: 1, more after a retry, a renewed token or a resumed download. */
  attempts: number;
  /** An EnOS envelope's requestId (what support asks for), or null. */
  requestId: string | null;
  text(): string;
  /** The body parsed as JSON (type it: `json<{ msg: string }>()`). */
  json<T = any>(): T;
}

/** A reusable client; close() when done (calls in flight are then cancelled). */
export class Client {
  constructor(gatewayUrl: string, appKey: string, appSecret: string, options?: ClientOptions);
  getToken(): Token;
  refreshToken(accessToken: string): Token;
  /** A token valid now: cached, refreshed early. */
  accessToken(): string;
  /** An API call rejected `token` (or, with none, whatever is cached). */
  invalidate(token?: string | null): void;
  /**
   * Calls an API (path and query relative to the gateway URL), signed with
   * the managed token; a refused token is renewed and the call sent once more.
   * Never blocks the event loop: the call runs on a library thread.
   */
  request(method: string, path: string, options?: RequestOptions): Promise<Response>;
  /** request(), blocking the event loop until the answer (for scripts); no `signal`. */
  requestSync(method: string, path: string, options?: Omit<RequestOptions, 'signal'>): Response;
  /** The apim-* headers for an API call with the managed token. */
  authHeaders(query?: string, body?: string | Bytes): Record<string, string>;
  counters(): Counters;
  close(): void;
}

export function getAccessToken(gatewayUrl: string, appKey: string, appSecret: string, library?: string): Token;
export function refreshAccessToken(gatewayUrl: string, appKey: string, appSecret: string, accessToken: string,
  library?: string): Token;
/** The apim-signature of an API call. */
export function signRequest(accessToken: string, query: string, body: string | Bytes | null, timestampMs: number,
  appSecret: string, library?: string): string;
export function version(library?: string): string;
