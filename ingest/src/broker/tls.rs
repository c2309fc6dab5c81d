//! MQTT over TLS and over secure WebSocket (rustls, PEM files), with certificate reload.
//!
//! rmqtt builds a listener's TLS configuration once, when it binds. To pick up a renewed
//! certificate (Let's Encrypt renews every ~60 days), this module checks the files every
//! `reload_interval`; when their content changed and the new pair is valid, it binds a new
//! listener on the same port (SO_REUSEPORT), starts serving it, then closes the old one.
//! Established connections are not interrupted; they keep the certificate they started with.
//! A broken new pair (half-written file, key not matching) is logged, counted, and ignored
//! until the next change: the old certificate stays in service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rmqtt::context::ServerContext;
use rmqtt::server::MqttServer;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{error, info};

use super::BrokerOptions;
use crate::metrics as m;

/// The certificate files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub reload_interval: Duration,
}

/// Reads and checks the pair; returns a digest of both files' content.
pub fn check_pair(cert: &Path, key: &Path) -> anyhow::Result<[u8; 32]> {
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
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
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
    Ok(h.finalize().into())
}

#[derive(Clone, Copy)]
enum Kind {
    Mqtts,
    Wss,
}

/// The TLS listeners and their reload loop.
pub(super) struct TlsListeners {
    pub mqtts_addr: Option<SocketAddr>,
    pub wss_addr: Option<SocketAddr>,
    task: JoinHandle<()>,
}

impl TlsListeners {
    /// Stops accepting on the TLS ports.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TlsListeners {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds one TLS listener and starts serving it; returns its address and serving task.
fn serve(
    scx: &ServerContext,
    opts: &BrokerOptions,
    tls: &TlsOptions,
    kind: Kind,
    addr: SocketAddr,
    lid: u16,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let (name, what) = match kind {
        Kind::Mqtts => ("external/tls", "MQTT over TLS"),
        Kind::Wss => ("external/wss", "MQTT over secure WebSocket"),
    };
    let builder = super::listener(opts, name, addr)
        .reuseaddr(Some(true))
        .reuseport(Some(true))
        .tls_cert(Some(tls.cert.to_string_lossy().into_owned()))
        .tls_key(Some(tls.key.to_string_lossy().into_owned()));
    let bound = builder
        .bind()
        .with_context(|| format!("cannot listen for {what} on {addr}: is the port free?"))?;
    let local = bound
        .local_addr()
        .with_context(|| format!("{what} listener address"))?;
    let listener = match kind {
        Kind::Mqtts => bound.tls(),
        Kind::Wss => bound.wss(),
    }
    .with_context(|| format!("cannot set up {what} with {}", tls.cert.display()))?;
    let server = MqttServer::new(scx.clone())
        .listener_by_id(listener, lid)
        .build();
    let task = tokio::spawn(async move {
        if let Err(e) = server.run().await {
            error!(error = %e, "{what} server stopped");
        }
    });
    Ok((local, task))
}

/// One TLS listener being served; dropping it closes the listening socket.
struct Serving {
    kind: Kind,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds the TLS listeners (those with an address) and starts the reload loop. `first_lid` is
/// the first unused listener id; reloads take the following ids.
pub(super) fn start(
    scx: &ServerContext,
    opts: &BrokerOptions,
    tls: &TlsOptions,
    mqtts: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    first_lid: u16,
) -> anyhow::Result<TlsListeners> {
    let digest = check_pair(&tls.cert, &tls.key)?;
    let mut lid = first_lid;
    let mut running = Vec::new();
    let (mut mqtts_addr, mut wss_addr) = (None, None);
    for (kind, addr) in [(Kind::Mqtts, mqtts), (Kind::Wss, wss)] {
        let Some(addr) = addr else { continue };
        let (local, task) = serve(scx, opts, tls, kind, addr, lid)?;
        lid = lid.wrapping_add(1);
        match kind {
            Kind::Mqtts => mqtts_addr = Some(local),
            Kind::Wss => wss_addr = Some(local),
        }
        running.push(Serving {
            kind,
            addr: local,
            task,
        });
    }
    let (scx, opts, tls) = (scx.clone(), opts.clone(), tls.clone());
    let task = tokio::spawn(reload_loop(scx, opts, tls, running, digest, lid));
    Ok(TlsListeners {
        mqtts_addr,
        wss_addr,
        task,
    })
}

async fn reload_loop(
    scx: ServerContext,
    opts: BrokerOptions,
    tls: TlsOptions,
    mut running: Vec<Serving>,
    mut digest: [u8; 32],
    mut lid: u16,
) {
    let mut tick = tokio::time::interval(tls.reload_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut reported_broken = false;
    loop {
        tick.tick().await;
        let (cert, key) = (tls.cert.clone(), tls.key.clone());
        let checked = tokio::task::spawn_blocking(move || check_pair(&cert, &key)).await;
        let new_digest = match checked {
            Ok(Ok(d)) => d,
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
        if new_digest == digest {
            continue;
        }
        let mut next = Vec::with_capacity(running.len());
        let mut failure = None;
        for old in &running {
            match serve(&scx, &opts, &tls, old.kind, old.addr, lid) {
                Ok((_, task)) => next.push(Serving {
                    kind: old.kind,
                    addr: old.addr,
                    task,
                }),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            lid = lid.wrapping_add(1);
        }
        if let Some(e) = failure {
            // `next` is dropped: the half-started listeners close, the old ones keep serving.
            error!(
                error = format!("{e:#}"),
                "cannot serve the renewed certificate; keeping the old one"
            );
            metrics::counter!(m::TLS_RELOADS, "outcome" => "error").increment(1);
            continue;
        }
        // Dropping the old listeners closes their sockets; their connections go on.
        running = next;
        digest = new_digest;
        metrics::counter!(m::TLS_RELOADS, "outcome" => "ok").increment(1);
        info!(cert = %tls.cert.display(), "TLS certificate reloaded");
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
        let err = check_pair(&cert, &key).unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot read the TLS certificate"),
            "{err:#}"
        );
        std::fs::write(&cert, "hello").unwrap();
        std::fs::write(&key, "world").unwrap();
        let err = check_pair(&cert, &key).unwrap_err();
        assert!(
            format!("{err:#}").contains("holds no certificate"),
            "{err:#}"
        );
    }
}
