//! Standard output, every write checked: a reader that went away (`| head`,
//! `| true`) ends the program quietly, killed by SIGPIPE as coreutils are;
//! any other failure (a full disk) is one line and exit code 4. Server bytes
//! shown on a terminal have their control characters escaped (as `gh` and
//! HTTPie do); into a pipe or a file they stay exact.

use std::io::{IsTerminal, Write};

use crate::Failure;

/// Exit code of output that could not be written.
pub const OUTPUT_FAILED: u8 = 4;

/// Writes `bytes` to standard output and flushes them.
pub fn write(bytes: impl AsRef<[u8]>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(bytes.as_ref())
        .and_then(|()| stdout.flush());
    written.map_err(failed)
}

/// Writes what a server sent: escaped on a terminal, exact elsewhere.
pub fn write_from_server(bytes: &[u8]) -> Result<(), Failure> {
    if std::io::stdout().is_terminal() {
        write(escape_controls(bytes))
    } else {
        write(bytes)
    }
}

/// A closed pipe: end as a coreutils program would (SIGPIPE, no message).
/// Any other error: a failure naming it.
pub fn failed(error: std::io::Error) -> Failure {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        die_of_sigpipe();
    }
    Failure {
        code: OUTPUT_FAILED,
        message: format!("cannot write to standard output: {error}"),
    }
}

/// Whether standard output is a pipe whose reader has gone.
pub fn reader_gone() -> bool {
    let mut poll = libc::pollfd {
        fd: 1,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut poll, 1, 0) == 1 && poll.revents & libc::POLLERR != 0 }
}

/// Ends the process as SIGPIPE's default action does.
pub fn die_of_sigpipe() -> ! {
    // SAFETY: restoring the default action and raising the signal on this
    // process; nothing runs after it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}

/// `bytes` as text with every control character (C0 but newline and tab,
/// DEL, C1) written as `\x..`/`\u{..}`: nothing a terminal would act on.
pub fn escape_controls(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => shown.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                shown.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                shown.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => shown.push(c),
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            escape_controls(b"ok\n\x1b[2J\x07\tend\r"),
            "ok\n\\x1b[2J\\x07\tend\\x0d"
        );
        assert_eq!(escape_controls("a\u{9b}31m".as_bytes()), "a\\u{9b}31m");
        assert_eq!(escape_controls("héllo ✓".as_bytes()), "héllo ✓");
    }
}
