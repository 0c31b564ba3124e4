//! Progress of long operations on an operator's terminal: a region's list read and imported, an
//! export built and written, a bundle or a backup written. Drawn on stderr only when it is a
//! terminal (indicatif hides itself otherwise), so scripts and logs see only the results the
//! commands print.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a phase's spinner turns.
const TICK_MS: u64 = 120;

/// A phase of an operation whose end cannot be counted (one command at the running node, say):
/// its name, a spinner and the time so far.
#[derive(Debug)]
pub struct Phase(ProgressBar);

impl Phase {
    /// Starts showing `what` (`reading list.csv`).
    pub fn start(what: impl Into<Cow<'static, str>>) -> Phase {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(TICK_MS));
        Phase(bar)
    }

    /// Ends the phase, leaving `outcome` on the terminal (`read 32,000 rows`).
    pub fn finish(self, outcome: impl Into<Cow<'static, str>>) {
        self.0.finish_with_message(outcome);
    }
}

impl Drop for Phase {
    /// A phase that ends by an error leaves no spinner behind.
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.finish_and_clear();
        }
    }
}

/// An operation of `len` counted steps (`what`: `writing the export`).
#[must_use]
pub fn steps(len: u64, what: impl Into<Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}
