//! The TLS certificate in service (rustls, from PEM files) and its reload.
//!
//! The gate (`super::gate`) terminates TLS for MQTT over TLS and secure WebSocket with the
//! configuration held here. Let's Encrypt renews every ~60 days: every `reload_interval` the
//! files are read again; when their content changed and the new pair is valid, new handshakes
//! use it. Established connections keep the certificate they started with. A broken new pair
//! (half-written file, key not matching) is logged once, counted, and ignored until the next
//! change: the old certificate stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::metrics as m;

/// The certificate files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub reload_interval: Duration,
}

/// A usable certificate pair: the rustls configuration and a digest of both files' content.
pub struct LoadedPair {
    pub config: Arc<ServerConfig>,
    pub digest: [u8; 32],
}

/// Reads and checks the pair, and builds the server configuration from it.
pub fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<LoadedPair> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let key_pem =
        std::fs::read(key).with_context(|| format!("cannot read the TLS key {}", key.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).with_context(|| {
        format!(
            "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    let mut h = Sha256::new();
    h.update(&cert_pem);
    h.update([0u8]);
    h.update(&key_pem);
    Ok(LoadedPair {
        config: Arc::new(config),
        digest: h.finalize().into(),
    })
}

/// The configuration new TLS handshakes use; replaced when the files change.
pub struct CertStore {
    current: RwLock<Arc<ServerConfig>>,
}

impl CertStore {
    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        match self.current.write() {
            Ok(mut g) => *g = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

/// The store and its reload loop (stopped when this is dropped).
pub(super) struct Reloading {
    pub store: Arc<CertStore>,
    task: JoinHandle<()>,
}

impl Drop for Reloading {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads the pair (a broken pair is an error at start) and starts watching the files.
pub(super) fn start(opts: &TlsOptions) -> anyhow::Result<Reloading> {
    let first = load_pair(&opts.cert, &opts.key)?;
    let store = Arc::new(CertStore {
        current: RwLock::new(first.config),
    });
    let task = tokio::spawn(reload_loop(store.clone(), opts.clone(), first.digest));
    Ok(Reloading { store, task })
}

async fn reload_loop(store: Arc<CertStore>, opts: TlsOptions, mut digest: [u8; 32]) {
    let mut tick = tokio::time::interval(opts.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut reported_broken = false;
    loop {
        tick.tick().await;
        let (cert, key) = (opts.cert.clone(), opts.key.clone());
        let loaded = match tokio::task::spawn_blocking(move || load_pair(&cert, &key)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                if !reported_broken {
                    error!(
                        error = format!("{e:#}"),
                        "TLS files unusable; keeping the certificate in service"
                    );
                    metrics::counter!(m::TLS_RELOADS, "outcome" => "error").increment(1);
                    reported_broken = true;
                }
                continue;
            }
            Err(e) => {
                error!(error = %e, "TLS file check failed");
                continue;
            }
        };
        reported_broken = false;
        if loaded.digest == digest {
            continue;
        }
        store.replace(loaded.config);
        digest = loaded.digest;
        metrics::counter!(m::TLS_RELOADS, "outcome" => "ok").increment(1);
        info!(cert = %opts.cert.display(), "TLS certificate reloaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pem_files_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        let err = load_pair(&cert, &key).err().unwrap();
        assert!(
            format!("{err:#}").contains("cannot read the TLS certificate"),
            "{err:#}"
        );
        std::fs::write(&cert, "hello").unwrap();
        std::fs::write(&key, "world").unwrap();
        let err = load_pair(&cert, &key).err().unwrap();
        assert!(
            format!("{err:#}").contains("holds no certificate"),
            "{err:#}"
        );
    }
}
