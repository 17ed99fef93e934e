//! A progress bar on standard error, for transfers over 1 MiB when standard
//! error is a terminal.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use enos_token::Progress;

/// Transfers up to this size show no bar.
const THRESHOLD: u64 = 1024 * 1024;

/// Draws the bar; `finish` ends its line.
pub struct ProgressBar {
    started: Instant,
    drawn: Mutex<bool>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Whether standard error is a terminal.
pub fn stderr_is_a_terminal() -> bool {
    // SAFETY: isatty only reads the descriptor's state.
    unsafe { libc::isatty(2) == 1 }
}

impl ProgressBar {
    pub fn new() -> ProgressBar {
        ProgressBar {
            started: Instant::now(),
            drawn: Mutex::new(false),
        }
    }

    /// Redraws the bar for `progress`, once the transfer is over 1 MiB.
    pub fn show(&self, progress: Progress) {
        let (done, total, verb) =
            if progress.send_total > THRESHOLD && progress.sent < progress.send_total {
                (progress.sent, Some(progress.send_total), "sent")
            } else {
                (progress.received, progress.receive_total, "received")
            };
        if done <= THRESHOLD && total.is_none_or(|total| total <= THRESHOLD) {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = mib(done) / seconds;
        let line = match total {
            Some(total) if total > 0 => {
                let share = (done as f64 / total as f64).min(1.0);
                let filled = (share * 30.0) as usize;
                format!(
                    "\r[{}{}] {:3.0}% {:.1}/{:.1} MiB {verb}, {rate:.1} MiB/s ",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    share * 100.0,
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("\r{:.1} MiB {verb}, {rate:.1} MiB/s ", mib(done)),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
        *self.drawn.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    /// Ends the bar's line, if one was drawn.
    pub fn finish(&self) {
        if *self.drawn.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
