//! The MQTT probe: the deployer logs in as the env's registered probe device, over TLS (the
//! certificate checked against the public web roots, for the MQTT domain) or plain TCP, and
//! publishes positions to the device's own topic at QoS 1, each acknowledged by a PUBACK.
//! MQTT 3.1.1 framing is rumqttc's codec; every refusal (TCP, TLS, CONNACK, a closed
//! connection) becomes a message that says what to do. The password never appears in one.
//!
//! - [`login`]: TCP, TLS and CONNECT/CONNACK, shared by both ways of publishing;
//!   [`tls`] the trust and the certificate errors, [`wire`] the packet framing.
//! - [`once`]: `deployer verify`'s few points, all acknowledged, then goodbye.
//! - [`stream`]: `deployer reboot-test`'s continuous publisher, which keeps its points in a
//!   [`ledger`] and reconnects with backoff while the host is down.

pub mod ledger;
pub mod login;
pub mod once;
pub mod stream;
pub mod tls;
pub mod wire;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::time::Duration;

pub use once::{payload, point_times, publish, Delivery, Probe, MAX_POINTS};
pub use stream::{Publisher, PublisherStats, Record, StreamConfig, MAX_RATE};

/// Largest packet the probe reads or writes (its own are a few hundred bytes).
pub(crate) const MAX_PACKET: usize = 64 * 1024;

/// How the probe reaches the broker.
#[derive(Clone)]
pub enum Transport {
    /// TLS; the certificate must be valid for `server_name` and chain to a public web root
    /// (Mozilla's list, as browsers trust) or to one of `extra_roots`.
    Tls {
        server_name: String,
        extra_roots: Vec<CertificateDer<'static>>,
    },
    /// Plain TCP (only where the environment opens the plain port).
    Plain,
}

/// Where and as whom the probe logs in.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub address: String,
    pub transport: Transport,
    /// The device account (MQTT username); it publishes to `devices/<id>/positions`.
    pub device_id: String,
    pub password: String,
    /// Limit of each wait (TCP connect, TLS handshake, CONNACK, a PUBACK).
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("tls", &matches!(self.transport, Transport::Tls { .. }))
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Refuses settings that cannot work, before any connection.
    pub fn check(&self) -> Result<(), ProbeError> {
        if self.device_id.is_empty() || self.password.is_empty() {
            return Err(ProbeError::Config(
                "the probe device needs an id and a password (TEST_DEVICE_PASSWORD)".into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ProbeError::Config(
                "the probe's timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Why the probe failed. No variant holds the password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    #[error("bad probe setting: {0}")]
    Config(String),
    #[error("cannot connect to {address}: {reason}. Next: `deployer status <env>` (is the instance up, is this port open in this env?)")]
    Connect { address: String, reason: String },
    #[error("{address} did not answer within {secs} s ({what}). Next: `deployer status <env>`, `deployer logs <env> ingest`")]
    Timeout {
        address: String,
        what: &'static str,
        secs: u64,
    },
    #[error("TLS with {address} failed: {reason}")]
    Tls { address: String, reason: String },
    #[error("the broker at {address} refused the probe device {device:?}: {reason}")]
    Refused {
        address: String,
        device: String,
        /// The CONNACK return code (MQTT 3.1.1).
        code: u8,
        reason: String,
    },
    #[error("the broker at {address} closed the connection {when}. {hint}")]
    Closed {
        address: String,
        when: &'static str,
        hint: String,
    },
    #[error("MQTT with {address} went wrong: {reason}")]
    Protocol { address: String, reason: String },
}

/// The topic a device publishes its positions to.
pub fn topic(device_id: &str) -> String {
    format!("devices/{device_id}/positions")
}

/// Reads extra trusted roots (PEM certificates) from a file, e.g. a private CA or Let's
/// Encrypt's staging roots.
pub fn read_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ProbeError> {
    let bad = |why: String| {
        ProbeError::Config(format!(
            "--mqtt-ca {}: {why} (expected PEM certificates)",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_not_in_debug_output() {
        let e = Endpoint {
            address: "mqtt.example.org:8883".into(),
            transport: Transport::Plain,
            device_id: "deployer-probe".into(),
            password: "hunter2-hunter2-hunter2-hunter2".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{e:?}").contains("hunter2"));
        assert!(e.check().is_ok());
        let no_password = Endpoint {
            password: String::new(),
            ..e.clone()
        };
        assert!(no_password
            .check()
            .unwrap_err()
            .to_string()
            .contains("TEST_DEVICE_PASSWORD"));
        let no_wait = Endpoint {
            timeout: Duration::ZERO,
            ..e
        };
        assert!(no_wait.check().is_err());
    }

    #[test]
    fn unreadable_or_empty_root_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = read_roots(&empty).unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
        let err = read_roots(&dir.path().join("missing.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--mqtt-ca") && err.contains("missing.pem"),
            "{err}"
        );
    }
}
