//! The C ABI: the only place that takes pointers from a caller.
//!
//! Every export is a plain `#[unsafe(no_mangle)] pub extern "C" fn` whose
//! doc comment becomes its comment in `include/enos_token.h`. Each one runs
//! its body through [`boundary`], which catches panics (reported as
//! `ENOS_ERR_INTERNAL`), turns an [`Error`] into an `enos_status`, and
//! replaces the thread's last-error details when the call ends. The bodies
//! only check and convert pointers, then call the safe core.
//!
//! [`Error`]: crate::Error

#![allow(non_camel_case_types)]
// C type names: enos_status, enos_client, ...
// The pointer rules every export shares are stated once, in the header's
// conventions preamble (cbindgen.toml), not in a `# Safety` section per
// function, which would reach the C header as Rust text.
#![allow(clippy::missing_safety_doc)]

// The modules are declared in the order their functions appear in the
// generated header, which reads like a manual: statuses, strings, errors,
// one-shot calls, the builder, then the client.
pub mod status;

pub mod strings;

pub mod last_error;

pub mod oneshot;

pub mod builder;

pub mod client;

pub mod managed;

pub mod signing;

pub mod request;

pub mod response;

pub mod call;

pub mod boundary;

pub use builder::{enos_client_builder, enos_log_callback, enos_log_level};
pub use call::enos_call;
pub use client::enos_client;
pub use managed::enos_client_counters;
pub use request::enos_request;
pub use response::enos_response;
pub use status::enos_status;
