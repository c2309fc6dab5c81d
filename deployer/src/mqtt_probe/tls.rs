//! The probe's TLS: which roots it trusts (the public web roots plus any `--mqtt-ca`), and
//! what a failed handshake means for the operator.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, RootCertStore};

use super::ProbeError;

/// A client configuration trusting Mozilla's roots and `extra`.
pub fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<rustls::ClientConfig, ProbeError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    for c in extra {
        roots
            .add(c.clone())
            .map_err(|e| ProbeError::Config(format!("an extra root is not usable: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What a failed TLS handshake means for the operator.
pub fn reason(e: &std::io::Error, server_name: &str) -> String {
    let cert = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match cert {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => format!(
                "the certificate for {server_name} is not signed by a publicly trusted CA (Caddy may still serve a staging or self-signed certificate: `deployer logs <env> caddy`; for a private CA pass --mqtt-ca)"
            ),
            CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. } => format!(
                "the certificate is not valid for {server_name} ({c:?}): the ingest must serve Caddy's certificate of the MQTT domain (INGEST_TLS_CERT)"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the certificate for {server_name} has expired: Caddy did not renew it (`deployer logs <env> caddy`); the ingest picks a renewed one up within 30 s"
            ),
            other => format!("the certificate for {server_name} is refused: {other:?}"),
        },
        Some(other) => format!("{other}"),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                "the server closed the connection during the handshake: does this port speak TLS (8883 does, 1883 does not)?".into()
            }
            _ => e.to_string(),
        },
    }
}
