//! The open-files limit the broker needs: each MQTT connection holds three descriptors (the
//! device's socket, and both ends of the gate's loopback hop). The soft limit is raised to the
//! hard one at start (as Go and systemd services commonly do), and a limit too low for
//! `--max-connections` is reported.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::{info, warn};

/// Descriptors one connection holds.
pub const PER_CONNECTION: u64 = 3;
/// Descriptors kept for the WAL, the database pool, HTTP and the rest.
const RESERVE: u64 = 256;

/// Raises the soft limit to the hard limit; returns the soft limit now in force.
pub fn raise(max_connections: usize) -> Option<u64> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot read the open-files limit");
            return None;
        }
    };
    let soft = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "open-files limit raised");
                hard
            }
            Err(e) => {
                warn!(error = %e, soft, hard, "cannot raise the open-files limit");
                soft
            }
        }
    } else {
        soft
    };
    let needed = (max_connections as u64)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(RESERVE);
    if soft < needed {
        warn!(
            limit = soft,
            needed,
            max_connections,
            "the open-files limit allows fewer connections than --max-connections: raise \
             `ulimit -n` (compose: `ulimits: nofile`) or lower --max-connections"
        );
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let soft = raise(1).expect("getrlimit works here");
        let (now_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now_soft);
        assert_eq!(now_soft, hard);
    }
}
