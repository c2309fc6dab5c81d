//! reboot-test: publish at a steady rate and record every PUBACK; reboot the target while the
//! publisher keeps trying (buffer and resend, like real trackers); at the end every
//! acknowledged point must be in the database, once. Exit code 0 only then.
//!
//! - [`env`]: a deployed env. The registered probe device publishes over MQTT/TLS on 8883
//!   (certificate checked) or plain 1883 where the env opens it; the instance is rebooted
//!   through Nova (soft reboot, or stop + start) or by the operator; rows are read over SSH.
//! - [`local`]: this machine's ingest (started from its binary) and the local TimescaleDB
//!   (`scripts/local-db`), a simulated fleet publishing, the "reboot" a restart of both.

pub mod env;
pub mod local;

use std::time::{Duration, Instant};

use crate::app::{Ctx, UsageError};
use crate::cli::RebootTestArgs;
use crate::env::LOCAL_TARGET;
use crate::progress::Step;
use crate::reboot_test::{compare, parse_rows, Verdict};

/// How long the publisher may take, after publishing stops, to get its last PUBACKs.
const DRAIN: Duration = Duration::from_secs(60);
/// How long the database may take to hold every acknowledged point (WAL drain).
const SETTLE: Duration = Duration::from_secs(120);
/// Between two looks at the database while it settles.
const SETTLE_INTERVAL: Duration = Duration::from_secs(2);

pub fn run(ctx: &mut Ctx, a: &RebootTestArgs) -> anyhow::Result<i32> {
    if a.env == LOCAL_TARGET {
        local::run(ctx, a)
    } else {
        env::run(ctx, a)
    }
}

/// A rate given on the command line, or the default; refused unless finite, positive and at
/// most `max`.
fn rate(given: Option<f64>, default: f64, max: f64) -> Result<f64, UsageError> {
    let r = given.unwrap_or(default);
    if r.is_finite() && r > 0.0 && r <= max {
        Ok(r)
    } else {
        Err(UsageError(format!(
            "--rate {r}: give positions per second above 0 and at most {max}"
        )))
    }
}

/// Publishes for `secs` seconds, showing `line()` as progress.
fn phase(secs: u64, what: &str, line: &dyn Fn() -> String) {
    let step = Step::start(format!("{what}: publish for {secs} s"));
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        step.progress(&line());
        std::thread::sleep(Duration::from_millis(500));
    }
    step.done_with(&line());
}

/// Reads the test's rows until every acknowledged point is there (or SETTLE is over), and
/// compares.
fn settle(
    acked: &[fleet::AckedPoint],
    acked_before: usize,
    rows: &mut dyn FnMut() -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<Verdict> {
    let step = Step::start("compare the acknowledged points with the database");
    let started = Instant::now();
    let verdict = loop {
        let db = parse_rows(&rows()?).map_err(anyhow::Error::msg)?;
        let v = compare(acked, &db, acked_before);
        step.progress(&format!("{} of {} in the database", v.found, v.acked));
        if v.missing.is_empty() || started.elapsed() > SETTLE {
            break v;
        }
        std::thread::sleep(SETTLE_INTERVAL);
    };
    step.done_with(&format!("{} of {} found", verdict.found, verdict.acked));
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked() {
        assert_eq!(rate(None, 2.0, 20.0).unwrap(), 2.0);
        assert_eq!(rate(Some(20.0), 2.0, 20.0).unwrap(), 20.0);
        for bad in [0.0, -3.0, f64::NAN, f64::INFINITY, 20.5] {
            let e = rate(Some(bad), 2.0, 20.0).unwrap_err().to_string();
            assert!(e.contains("--rate") && e.contains("at most 20"), "{e}");
        }
    }
}
