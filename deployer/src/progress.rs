//! What the operator sees while a command runs: one line per step, a spinner with the
//! elapsed time on long steps, and `--verbose` lines for each external command.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

static VERBOSE: AtomicBool = AtomicBool::new(false);
/// The spinner of the step in progress, so that other lines print above it.
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Prints a line to stderr without breaking the spinner.
pub fn say(line: &str) {
    let current = CURRENT.lock().ok().and_then(|c| c.clone());
    match current {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        _ => eprintln!("{line}"),
    }
}

/// Prints a line only with `--verbose`.
pub fn detail(line: &str) {
    if verbose() {
        say(line);
    }
}

/// One named step of a command, timed from start to finish.
pub struct Step {
    name: String,
    started: Instant,
    bar: ProgressBar,
}

impl Step {
    pub fn start(name: impl Into<String>) -> Self {
        let name = name.into();
        eprintln!("==> {name}");
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("    {spinner} {elapsed:>4} {wide_msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut c) = CURRENT.lock() {
            *c = Some(bar.clone());
        }
        Self {
            name,
            started: Instant::now(),
            bar,
        }
    }

    /// Shows the latest progress (an output line, "try 3/15") next to the spinner.
    pub fn progress(&self, msg: &str) {
        self.bar.set_message(msg.to_owned());
    }

    /// Shows a progress line that should stay on screen (also without a terminal).
    pub fn note(&self, msg: &str) {
        say(&format!("    {msg}"));
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn done(self) {
        self.finish("ok");
    }

    pub fn done_with(self, msg: &str) {
        self.finish(msg);
    }

    fn finish(&self, word: &str) {
        self.bar.finish_and_clear();
        if let Ok(mut c) = CURRENT.lock() {
            *c = None;
        }
        eprintln!(
            "    {word}: {} ({})",
            self.name,
            format_elapsed(self.started.elapsed())
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.finish("FAILED");
        }
    }
}

pub fn format_elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_is_human() {
        assert_eq!(format_elapsed(Duration::from_millis(3200)), "3.2s");
        assert_eq!(format_elapsed(Duration::from_secs(125)), "2m05s");
    }
}
