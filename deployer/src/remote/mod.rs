//! Talking to the instance with the system OpenSSH (so the operator's keys, agent and
//! `~/.ssh/config` work): [`ssh`] runs commands and writes files, [`wait`] polls until SSH and
//! cloud-init are ready, [`known_hosts`] pins each env's host key.

pub mod known_hosts;
pub mod ssh;
pub mod wait;

pub use ssh::{SshError, SshTarget};
pub use wait::WaitPolicy;
