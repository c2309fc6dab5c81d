//! Waiting for a fresh or rebooted instance: first until SSH answers, then until cloud-init
//! has written its marker (Docker installed, data volume mounted). Each try is shown.

use std::time::Duration;

use super::ssh::{quote, SshError, SshTarget};
use crate::progress::Step;
use crate::redact::Redactor;

/// How many times to try, and how long to sleep between tries.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub tries: u32,
    pub interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(
        "SSH to {target} did not answer after {tries} tries ({waited}); last error: {last}.\n\
         Next: check that the instance runs (`deployer state <env>`), that your IP is in \
         OPERATOR_CIDRS, and that your SSH key matches SSH_PUBLIC_KEY"
    )]
    SshTimeout {
        target: String,
        tries: u32,
        waited: String,
        last: String,
    },
    #[error(
        "cloud-init marker {marker} did not appear on {target} after {tries} tries ({waited}).\n\
         Next: `deployer ssh <env> -- sudo tail -n 50 /var/log/cloud-init-output.log`"
    )]
    MarkerTimeout {
        target: String,
        marker: String,
        tries: u32,
        waited: String,
    },
    #[error(transparent)]
    Ssh(#[from] SshError),
}

/// Tries `true` over SSH until it works. A host key mismatch stops at once.
pub fn wait_for_ssh(
    target: &SshTarget,
    policy: WaitPolicy,
    step: &Step,
    redactor: &Redactor,
) -> Result<(), WaitError> {
    let mut last = String::from("no try made");
    for n in 1..=policy.tries.max(1) {
        step.progress(&format!(
            "try {n}/{} to reach {}",
            policy.tries,
            target.display()
        ));
        match target.run("true", redactor) {
            Ok(_) => return Ok(()),
            Err(e @ SshError::HostKeyMismatch { .. }) => return Err(e.into()),
            Err(e) => {
                last = e.to_string();
                tracing::debug!(try_ = n, error = %last, "ssh not ready");
            }
        }
        if n < policy.tries {
            std::thread::sleep(policy.interval);
        }
    }
    Err(WaitError::SshTimeout {
        target: target.display(),
        tries: policy.tries,
        waited: crate::progress::format_elapsed(step.elapsed()),
        last,
    })
}

/// Tries `test -e <marker>` over SSH until the file exists.
pub fn wait_for_marker(
    target: &SshTarget,
    marker: &str,
    policy: WaitPolicy,
    step: &Step,
    redactor: &Redactor,
) -> Result<(), WaitError> {
    let probe = format!("test -e {}", quote(marker));
    for n in 1..=policy.tries.max(1) {
        step.progress(&format!("try {n}/{}: waiting for {marker}", policy.tries));
        match target.probe(&probe, redactor) {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(_) => {}
            Err(e @ SshError::HostKeyMismatch { .. }) => return Err(e.into()),
            // The instance may still be rebooting between tries: keep trying.
            Err(e) => tracing::debug!(try_ = n, error = %e, "marker probe failed"),
        }
        if n < policy.tries {
            std::thread::sleep(policy.interval);
        }
    }
    Err(WaitError::MarkerTimeout {
        target: target.display(),
        marker: marker.to_owned(),
        tries: policy.tries,
        waited: crate::progress::format_elapsed(step.elapsed()),
    })
}
