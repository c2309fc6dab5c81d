//! The database connection pool (deadpool-postgres), over TLS (rustls) when a CA file is given
//! or the URL asks for it, as OVH's managed PostgreSQL requires.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::redact_url;

/// Builds the pool. Connections are opened lazily, so a database that is down at start does
/// not stop the service (the WAL keeps accepting positions).
pub fn pool(url: &str, ca: Option<&Path>, size: usize) -> anyhow::Result<Pool> {
    let mut pg = tokio_postgres::Config::from_str(url).with_context(|| {
        format!(
            "invalid database URL {}: expected postgres://user:password@host:port/db",
            redact_url(url)
        )
    })?;
    pg.connect_timeout(std::time::Duration::from_secs(5));
    pg.keepalives(true);
    pg.application_name("accoreboot-ingest");
    let mgr_cfg = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let wants_tls =
        ca.is_some() || matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    let mgr = if wants_tls {
        let tls = tls_connector(ca)?;
        Manager::from_config(pg, tls, mgr_cfg)
    } else {
        Manager::from_config(pg, tokio_postgres::NoTls, mgr_cfg)
    };
    Pool::builder(mgr)
        .max_size(size)
        .build()
        .context("building the database pool")
}

fn tls_connector(ca: Option<&Path>) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read the database CA file {}", path.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("{} holds no certificate: give the PEM CA of the database server", path.display());
            }
            for c in certs {
                roots.add(c).with_context(|| format!("invalid CA certificate in {}", path.display()))?;
            }
        }
        None => anyhow::bail!("the database URL requires TLS: pass the server's CA with --database-ca (INGEST_DATABASE_CA)"),
    }
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.into())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
