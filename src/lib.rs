//! # enos-token
//!
//! Get, refresh, keep and use EnOS API-gateway access tokens, from Rust or
//! through the C ABI declared in `include/enos_token.h`.
//!
//! The safe Rust core ([`Client`], [`ClientBuilder`], [`get_access_token`],
//! [`refresh_access_token`]) holds no raw pointers; the [`ffi`] module is the
//! thin C boundary over it.

pub mod client;
pub mod error;
pub mod ffi;
pub(crate) mod fork;
pub mod log;
pub(crate) mod managed;
pub mod response;
pub mod secret;
pub(crate) mod shared_cache;
pub mod signing;
pub mod timestamp;
pub mod transport;

#[cfg(feature = "fake-gateway")]
pub mod fake;

pub use client::{Client, ClientBuilder, get_access_token, refresh_access_token};
pub use error::{Error, ErrorKind};
pub use managed::CounterValues;
pub use response::Token;
