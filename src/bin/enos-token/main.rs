//! `enos-token`: EnOS access tokens and signed API calls from the shell,
//! and a doctor that says why a setup fails. Argument parsing and printing
//! only: the work is the library's (`Client`, `Request`, `enos_token::doctor`).
//!
//! | file | what |
//! |---|---|
//! | `main.rs` | dispatch, exit codes |
//! | `options.rs` | the options and their parsing |
//! | `help.rs` | the help texts |
//! | `configuration.rs` | flags over the environment, the shared cache, the client |
//! | `commands.rs` | `token`, `headers`, `doctor` |
//! | `request.rs` | `request`: bodies, `-F` parts, `-H` headers, `-o` outputs |
//! | `progress.rs` | the progress bar of large transfers |
//! | `interrupt.rs` | Ctrl-C cancels a call in flight (exit 130) |
//! | `stdout.rs` | standard output, every write checked; server bytes escaped on a terminal |

mod commands;
mod configuration;
mod help;
mod interrupt;
mod options;
mod progress;
mod request;
mod stdout;

use std::process::ExitCode;

use enos_token::Error;

use help::{HELP, USAGE, command_help};
use options::{Options, parse};

/// How the program ends: success, or an exit code and a message.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

pub fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: format!("{}\n{USAGE}", message.into()),
    }
}

pub fn configuration(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: message.into(),
    }
}

/// A failure of the library: 10 + its status; a refused argument is a usage error.
pub fn library(error: Error) -> Failure {
    let status = enos_token::ffi::enos_status::from(error.kind()) as u8;
    Failure {
        code: if error.kind() == enos_token::ErrorKind::InvalidArgument {
            2
        } else {
            10 + status
        },
        message: error.message().to_string(),
    }
}

fn main() -> ExitCode {
    no_core_dumps();
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("enos-token: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A core dump of this program would hold the secret and the token: none
/// is written (no core file, and the process is not dumpable).
fn no_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain process settings, valid arguments.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn run(args: Vec<String>) -> Result<u8, Failure> {
    if args.iter().any(|a| a == "--version" || a == "-V") {
        stdout::write(format!("enos-token {}\n", env!("CARGO_PKG_VERSION")))?;
        return Ok(0);
    }
    let options = parse(args)?;
    let command = options.positional.first().cloned();
    if let Some(help) = command
        .as_deref()
        .filter(|_| options.help)
        .and_then(command_help)
    {
        stdout::write(help)?;
        return Ok(0);
    }
    if options.help || command.is_none() {
        stdout::write(HELP)?;
        return if command.is_none() && !options.help {
            Err(usage("a command is needed"))
        } else {
            Ok(0)
        };
    }
    match command.as_deref() {
        Some("token") => commands::token(&options),
        Some("headers") => commands::headers(&options),
        Some("request") => request::request(&options),
        Some("doctor") => commands::doctor(&options),
        Some(other) => Err(usage(format!(
            "unknown command {other}: token, headers, request or doctor"
        ))),
        None => unreachable!("handled above"),
    }
}

pub fn expect_arguments(options: &Options, count: usize, form: &str) -> Result<(), Failure> {
    if options.positional.len() != count {
        return Err(usage(format!("usage: enos-token {form}")));
    }
    Ok(())
}
