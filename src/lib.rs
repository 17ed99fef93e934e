//! # enos-token
//!
//! Get, refresh, keep and use EnOS API-gateway access tokens, from Rust or
//! through the C ABI declared in `include/enos_token.h`.
//!
//! The safe Rust core ([`Client`], [`ClientBuilder`], [`get_access_token`],
//! [`refresh_access_token`]) holds no raw pointers; the [`ffi`] module is the
//! thin C boundary over it. Everything else is private to the crate.
//!
//! ## How the code is laid out
//!
//! | layer | modules |
//! |---|---|
//! | C boundary | `ffi/` (`boundary.rs`: the one road every export takes; one module per group of functions) |
//! | client | `client.rs` (builder, client), `token_request.rs` (Get and Refresh requests), `oneshot.rs` (calls without a client), `doctor.rs` (a setup checked step by step) |
//! | API calls | `api/` (the request object, bodies and multipart, outputs and progress, one call with its renewal, resumed downloads, the response) |
//! | managed token | `managed/` (the state table, flights, the background thread, the shared file's use), `shared_cache.rs` and `shared_cache/` (the file, its directory, records and lock) |
//! | wire | `transport/` (agent per process, TCP, proxies, DNS, error classification), `response.rs`, `signing.rs` |
//! | time | `time/` (both clocks, the test clock, request timestamps) |
//! | process | `fork.rs` (fork generations, locks never inherited locked) |
//! | support | `error.rs`, `log.rs`, `secret.rs` (redacted and zeroed text), `redact.rs` (known tokens kept out of messages) |
//! | tests and demos | `fake/` and `bin/enos-fake-gateway.rs` (feature `fake-gateway`) |
//!
//! ## Adding a C function
//!
//! 1. Write it in the `ffi` module of its group as a plain
//!    `#[unsafe(no_mangle)] pub unsafe extern "C" fn` whose body is one
//!    `boundary::fallible` (or `infallible`) call, with a doc comment: it
//!    becomes the function's entry in the header.
//! 2. Keep the body to pointer checks (`boundary::required_*`) and one call
//!    into the safe core; put the logic in the core, with its tests.
//! 3. Regenerate the header (`ENOS_TOKEN_WRITE_HEADER=1 cargo build`) and
//!    commit it; `tests/header.rs` fails until you do.
//! 4. Bind it in `include/enos_token.hpp`, `examples/python/enos_token/__init__.py`
//!    and `examples/node/enos_token.js`, test it in Rust (NULL and non-UTF-8
//!    arguments in `tests/ffi.rs`) and from C where hosts differ, and list it
//!    in the table of the C contract in `examples/c/README.md`.

mod api;
mod client;
pub mod doctor;
mod error;
pub mod ffi;
mod fork;
mod log;
mod managed;
mod oneshot;
mod redact;
mod response;
mod secret;
mod shared_cache;
pub mod signing;
mod time;
mod token_request;
mod transport;

#[cfg(feature = "fake-gateway")]
pub mod fake;

/// The parsers the fuzz targets drive (`tests/fuzz`); not an API.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::response::{MAX_TOKEN_BYTES, parse_token_answer};
    pub use crate::signing::sorted_query_parameters;
    pub use crate::transport::HttpAnswer;
    pub use crate::transport::http1::read_whole_answer as read_whole_http_answer;
}

pub use api::{
    BINARY_CONTENT_TYPE, Call, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_RESPONSE_BYTES,
    JSON_CONTENT_TYPE, Progress, Request, Response,
};
pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind, service_status};
pub use log::{LogLevel, Logger};
pub use managed::CounterValues;
pub use oneshot::{get_access_token, refresh_access_token};
pub use response::Token;
pub use secret::AppSecret;
pub use transport::PROXY_ENVIRONMENT_VARIABLES;
