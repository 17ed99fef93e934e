// Package enostoken gets, refreshes, keeps and uses EnOS API-gateway access
// tokens through libenos_token (cgo; the C library is found with pkg-config,
// package enos-token).
//
// Every call locks its goroutine to its OS thread from the C call until the
// library's per-thread error details have been read, so an *Error always
// describes its own call. A Client may be used by many goroutines at once;
// Close it when no call on it is running.
package enostoken

// #cgo pkg-config: enos-token
// #include <stdlib.h>
// #include <enos_token.h>
import "C"

import (
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// Error is a failed call: its status, the gateway's status (e.g. 1203) and
// the HTTP status when there were any, and the library's message (which
// never holds the secret or a token). Use errors.As to get it.
type Error struct {
	Status        int
	StatusName    string
	ServiceStatus int
	HTTPStatus    int
	Message       string
	// Cause is the error of a Reader part or an Output that stopped the
	// call (ENOS_ERR_CANCELLED), else nil.
	Cause error
}

func (e *Error) Error() string { return e.StatusName + ": " + e.Message }

// Unwrap is the Cause, for errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Cause }

// lastError turns a failed status into an *Error; the caller's goroutine is
// still locked to the OS thread of the failed call.
func lastError(status C.enum_enos_status) error {
	if status == C.ENOS_OK {
		return nil
	}
	message := ""
	if text := C.enos_last_error_message(); text != nil {
		message = C.GoString(text)
	}
	return &Error{
		Status:        int(status),
		StatusName:    C.GoString(C.enos_status_name(C.int32_t(status))),
		ServiceStatus: int(C.enos_last_service_status()),
		HTTPStatus:    int(C.enos_last_http_status()),
		Message:       message,
	}
}

// call runs a C call with the goroutine locked to its thread until its
// error details are read.
func call(f func() C.enum_enos_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return lastError(f())
}

// Token is an access token and its lifetime as the gateway said it.
type Token struct {
	AccessToken string
	Expire      time.Duration
}

func takeString(s *C.char) string {
	defer C.enos_string_free(s)
	return C.GoString(s)
}

// cstrings holds C copies of Go strings until free.
type cstrings []*C.char

func (c *cstrings) of(s string) *C.char {
	p := C.CString(s)
	*c = append(*c, p)
	return p
}

func (c *cstrings) free() {
	for _, p := range *c {
		C.free(unsafe.Pointer(p))
	}
}

// GetAccessToken is a one-shot Get Access Token, without a client.
func GetAccessToken(gatewayURL, appKey, appSecret string) (Token, error) {
	var s cstrings
	defer s.free()
	var token *C.char
	var expire C.int64_t
	err := call(func() C.enum_enos_status {
		return C.enos_get_access_token(s.of(gatewayURL), s.of(appKey), s.of(appSecret), &token, &expire)
	})
	if err != nil {
		return Token{}, err
	}
	return Token{takeString(token), time.Duration(expire) * time.Second}, nil
}

// RefreshAccessToken is a one-shot Refresh Access Token, without a client.
func RefreshAccessToken(gatewayURL, appKey, appSecret, accessToken string) (Token, error) {
	var s cstrings
	defer s.free()
	var token *C.char
	var expire C.int64_t
	err := call(func() C.enum_enos_status {
		return C.enos_refresh_access_token(s.of(gatewayURL), s.of(appKey), s.of(appSecret),
			s.of(accessToken), &token, &expire)
	})
	if err != nil {
		return Token{}, err
	}
	return Token{takeString(token), time.Duration(expire) * time.Second}, nil
}

// Option sets an option of a new Client.
type Option func(b *building) C.enum_enos_status

// building is a Client being built: its builder, the C strings to free after
// the build, and what the client keeps until Close (a log function).
type building struct {
	builder *C.enos_client_builder
	strings cstrings
	keep    []func()
}

// WithTimeouts sets the connect and the whole-call timeouts (default 10 s, 30 s).
func WithTimeouts(connect, total time.Duration) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_timeout_ms(o.builder, C.uint64_t(connect.Milliseconds()),
			C.uint64_t(total.Milliseconds()))
	}
}

// WithCAFile trusts the PEM certificates in path instead of the built-in roots.
func WithCAFile(path string) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_ca_file(o.builder, o.strings.of(path))
	}
}

// WithProxy sets the proxy URL; "" turns proxies off (default: the environment).
func WithProxy(url string) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_proxy(o.builder, o.strings.of(url))
	}
}

// WithRefreshMargin refreshes the managed token when less than this is left (default 600 s).
func WithRefreshMargin(margin time.Duration) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_refresh_margin_s(o.builder, C.uint32_t(margin.Seconds()))
	}
}

// WithRetries sets the retries of a transient failure and the first backoff.
func WithRetries(maxRetries uint32, baseBackoff time.Duration) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_retries(o.builder, C.uint32_t(maxRetries),
			C.uint64_t(baseBackoff.Milliseconds()))
	}
}

// WithBackgroundRefresh makes a thread of the client refresh due tokens.
func WithBackgroundRefresh(enabled bool) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_background_refresh(o.builder, C.bool(enabled))
	}
}

// WithSharedCache shares the managed token with every process given the same private directory.
func WithSharedCache(directory string) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_shared_cache(o.builder, o.strings.of(directory))
	}
}

// WithMaxResponseBytes is the largest API answer Request reads (default 64 MiB).
func WithMaxResponseBytes(maxBytes int) Option {
	return func(o *building) C.enum_enos_status {
		return C.enos_client_builder_set_max_response_bytes(o.builder, C.size_t(maxBytes))
	}
}

// Client is a reusable client for one gateway and one application.
type Client struct {
	handle *C.enos_client
	// What the client keeps until Close (a log function's handle).
	keep []func()
}

// New builds a client for gatewayURL and the application appKey/appSecret.
func New(gatewayURL, appKey, appSecret string, options ...Option) (*Client, error) {
	b := &building{}
	defer b.strings.free()
	var handle *C.enos_client
	err := call(func() C.enum_enos_status {
		s := &b.strings
		status := C.enos_client_builder_new(s.of(gatewayURL), s.of(appKey), s.of(appSecret), &b.builder)
		if status != C.ENOS_OK {
			return status
		}
		for _, option := range options {
			if status = option(b); status != C.ENOS_OK {
				C.enos_client_builder_free(b.builder)
				return status
			}
		}
		return C.enos_client_build(b.builder, &handle) // consumes the builder
	})
	if err != nil {
		for _, release := range b.keep {
			release()
		}
		return nil, err
	}
	return &Client{handle: handle, keep: b.keep}, nil
}

// Close frees the client; no call on it may be running. Idempotent.
func (c *Client) Close() {
	C.enos_client_free(c.handle)
	c.handle = nil
	for _, release := range c.keep {
		release()
	}
	c.keep = nil
}

// GetToken is Get Access Token with the client's connections and options.
func (c *Client) GetToken() (Token, error) {
	var token *C.char
	var expire C.int64_t
	if err := call(func() C.enum_enos_status { return C.enos_client_get_token(c.handle, &token, &expire) }); err != nil {
		return Token{}, err
	}
	return Token{takeString(token), time.Duration(expire) * time.Second}, nil
}

// RefreshToken is Refresh Access Token of accessToken.
func (c *Client) RefreshToken(accessToken string) (Token, error) {
	var s cstrings
	defer s.free()
	var token *C.char
	var expire C.int64_t
	err := call(func() C.enum_enos_status {
		return C.enos_client_refresh_token(c.handle, s.of(accessToken), &token, &expire)
	})
	if err != nil {
		return Token{}, err
	}
	return Token{takeString(token), time.Duration(expire) * time.Second}, nil
}

// AccessToken is a token valid now: cached, refreshed early.
func (c *Client) AccessToken() (string, error) {
	var token *C.char
	if err := call(func() C.enum_enos_status { return C.enos_client_access_token(c.handle, &token) }); err != nil {
		return "", err
	}
	return takeString(token), nil
}

// Invalidate tells the client an API call rejected token ("" forgets whatever is cached).
func (c *Client) Invalidate(token string) error {
	var s cstrings
	defer s.free()
	var rejected *C.char
	if token != "" {
		rejected = s.of(token)
	}
	return call(func() C.enum_enos_status { return C.enos_client_invalidate(c.handle, rejected) })
}

// AuthHeaders are the apim-* headers for an API call with the managed token.
func (c *Client) AuthHeaders(query string, body []byte) (map[string]string, error) {
	var s cstrings
	defer s.free()
	bodyPointer, freeBody := cBody(body)
	defer freeBody()
	var headers *C.char
	err := call(func() C.enum_enos_status {
		return C.enos_client_auth_headers(c.handle, s.of(query), bodyPointer, C.size_t(len(body)), &headers)
	})
	if err != nil {
		return nil, err
	}
	result := map[string]string{}
	for _, line := range strings.Split(takeString(headers), "\r\n") {
		if name, value, found := strings.Cut(line, ": "); found {
			result[name] = value
		}
	}
	return result, nil
}

// Response is an API's answer, whatever its HTTP status.
type Response struct {
	Status int
	// Body is empty when the request had an Output.
	Body []byte
	// ContentType is the Content-Type header's first value, "" when absent.
	ContentType string
	// Headers has lower-case names and the first value of each.
	Headers map[string]string
	// Attempts is how many times the call was sent: 1, more after a retry,
	// a renewed token or a resumed download.
	Attempts int
	// RequestID is an EnOS envelope's requestId (what support asks for), "" if none.
	RequestID string
}

// Header is the first value of header name (any case), "" when absent.
func (r *Response) Header(name string) string { return r.Headers[strings.ToLower(name)] }

// Request calls an API: method on path (path and query relative to the
// gateway URL), with body and its contentType ("" for none), signed with the
// managed token over exactly the query and body sent; a refused token is
// renewed and the call sent once more. Any HTTP status is a Response;
// transport failures are an *Error.
func (c *Client) Request(method, path, contentType string, body []byte) (*Response, error) {
	var s cstrings
	defer s.free()
	bodyPointer, freeBody := cBody(body)
	defer freeBody()
	var contentTypePointer *C.char
	if contentType != "" {
		contentTypePointer = s.of(contentType)
	}
	var response *C.enos_response
	err := call(func() C.enum_enos_status {
		return C.enos_client_request(c.handle, s.of(method), s.of(path), contentTypePointer, bodyPointer,
			C.size_t(len(body)), &response)
	})
	if err != nil {
		return nil, err
	}
	return readResponse(response), nil
}

// readResponse copies an enos_response into a Response, then frees it.
func readResponse(response *C.enos_response) *Response {
	defer C.enos_response_free(response)
	var s cstrings
	defer s.free()
	var length C.size_t
	pointer := C.enos_response_body(response, &length)
	result := &Response{
		Status:   int(C.enos_response_status(response)),
		Body:     C.GoBytes(unsafe.Pointer(pointer), C.int(length)),
		Headers:  map[string]string{},
		Attempts: int(C.enos_response_attempts(response)),
	}
	if id := C.enos_response_request_id(response); id != nil {
		result.RequestID = C.GoString(id)
	}
	if contentType := C.enos_response_header(response, s.of("content-TYPE")); contentType != nil {
		result.ContentType = C.GoString(contentType)
	}
	var name, value *C.char
	for index := 0; C.enos_response_header_at(response, C.size_t(index), &name, &value); index++ {
		if _, seen := result.Headers[C.GoString(name)]; !seen {
			result.Headers[C.GoString(name)] = C.GoString(value)
		}
	}
	return result
}

// cBody copies body into C memory (nil when it is empty), with the function
// that frees it.
func cBody(body []byte) (*C.uint8_t, func()) {
	if len(body) == 0 {
		return nil, func() {}
	}
	pointer := (*C.uint8_t)(C.CBytes(body))
	return pointer, func() { C.free(unsafe.Pointer(pointer)) }
}

// Version is the library's version.
func Version() string { return C.GoString(C.enos_version()) }

// Counters are what a client has done.
type Counters struct {
	GetRequests, RefreshRequests, Retries, Failures, Waits, CacheHits, DNSLookups uint64
	// APICalls made with Request and Do, and TokenRenewals after a refused token.
	APICalls, TokenRenewals uint64
	// APIRetries of rate-limited or failed calls, and APIRetriesDenied (the
	// retry budget spent, or the wait past the deadline).
	APIRetries, APIRetriesDenied uint64
}

// Counters reads the client's counters.
func (c *Client) Counters() (Counters, error) {
	var counters C.enos_client_counters
	counters.struct_size = C.size_t(unsafe.Sizeof(counters))
	if err := call(func() C.enum_enos_status { return C.enos_client_get_counters(c.handle, &counters) }); err != nil {
		return Counters{}, err
	}
	return Counters{uint64(counters.get_requests), uint64(counters.refresh_requests), uint64(counters.retries),
		uint64(counters.failures), uint64(counters.waits), uint64(counters.cache_hits),
		uint64(counters.dns_lookups), uint64(counters.api_calls), uint64(counters.token_renewals),
		uint64(counters.api_retries), uint64(counters.api_retries_denied)}, nil
}

// SignRequest is the apim-signature of an API call (see enos_sign_request).
func SignRequest(accessToken, query string, body []byte, timestampMs int64, appSecret string) (string, error) {
	var s cstrings
	defer s.free()
	bodyPointer, freeBody := cBody(body)
	defer freeBody()
	var signature *C.char
	err := call(func() C.enum_enos_status {
		return C.enos_sign_request(s.of(accessToken), s.of(query), bodyPointer, C.size_t(len(body)),
			C.int64_t(timestampMs), s.of(appSecret), &signature)
	})
	if err != nil {
		return "", err
	}
	return takeString(signature), nil
}
