//! The MQTT probe of `deployer verify`: logs in as the env's registered probe device, over TLS
//! (the certificate checked against the public web roots, for the MQTT domain) or plain TCP,
//! and publishes a few positions to the device's own topic at QoS 1, each acknowledged by a
//! PUBACK. MQTT 3.1.1 framing is rumqttc's codec; every refusal (TCP, TLS, CONNACK, a closed
//! connection) becomes a message that says what to do. The password never appears in one.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet, Publish};
use rumqttc::mqttbytes::QoS;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest packet the probe reads or writes (its own are a few hundred bytes).
const MAX_PACKET: usize = 64 * 1024;

/// Most points one probe publishes.
pub const MAX_POINTS: usize = 100;

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

/// One probe run.
#[derive(Clone)]
pub struct Probe {
    /// `host:port` to connect to.
    pub address: String,
    pub transport: Transport,
    /// The device account (MQTT username); it publishes to `devices/<id>/positions`.
    pub device_id: String,
    pub password: String,
    /// Points to publish, one message each.
    pub points: usize,
    /// Limit of each wait (TCP connect, TLS handshake, CONNACK, the PUBACKs).
    pub timeout: Duration,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("address", &self.address)
            .field("tls", &matches!(self.transport, Transport::Tls { .. }))
            .field("device_id", &self.device_id)
            .field("points", &self.points)
            .finish_non_exhaustive()
    }
}

/// What the broker acknowledged: the probe's points by their time (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub times_ms: Vec<i64>,
}

/// Why the probe failed. No variant holds the password.
#[derive(Debug, thiserror::Error)]
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

fn tls_config(extra: &[CertificateDer<'static>]) -> Result<rustls::ClientConfig, ProbeError> {
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
fn tls_reason(e: &std::io::Error, server_name: &str) -> String {
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

/// What a CONNACK refusal means for the operator.
fn refusal(code: ConnectReturnCode, device: &str) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword => format!(
            "bad user name or password (CONNACK 4): the probe device is not registered or its secret differs from TEST_DEVICE_PASSWORD. Next: run `deployer deploy <env>` again (ingest-migrate registers {device} with the env's TEST_DEVICE_PASSWORD), then verify"
        ),
        ConnectReturnCode::NotAuthorized => format!(
            "not authorized (CONNACK 5): the account {device} is disabled (ingest-migrate never re-enables it: `deployer ssh <env> -- docker compose -f /opt/accoreboot/docker-compose.yml run --rm ingest-migrate device enable {device}`), or the broker is at a connection limit or cannot reach its account registry (the database). Next: `deployer logs <env> ingest`"
        ),
        ConnectReturnCode::ServiceUnavailable => {
            "server unavailable (CONNACK 3). Next: `deployer logs <env> ingest`".into()
        }
        ConnectReturnCode::BadClientId => "client identifier refused (CONNACK 2)".into(),
        ConnectReturnCode::RefusedProtocolVersion => {
            "MQTT 3.1.1 refused (CONNACK 1): is this the AccoReboot ingest?".into()
        }
        ConnectReturnCode::Success => "accepted".into(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The probe's points: one second apart, ending a second ago (well inside the ingest's
/// accepted window, whatever small clock difference the operator's machine has).
pub fn point_times(points: usize, now_ms: i64) -> Vec<i64> {
    (0..points as i64)
        .map(|i| now_ms - 1_000 * (points as i64 - i))
        .collect()
}

/// One point of the project's JSON format, marked as the probe's.
pub fn payload(time_ms: i64) -> String {
    format!(
        r#"{{"time": {time_ms}, "lat": 48.8566, "lon": 2.3522, "attributes": {{"probe": "deployer verify"}}}}"#
    )
}

/// Connects, logs in, publishes and waits for every PUBACK; then disconnects.
pub async fn publish(p: &Probe) -> Result<Delivery, ProbeError> {
    if p.points == 0 || p.points > MAX_POINTS {
        return Err(ProbeError::Config(format!(
            "{} points: publish 1 to {MAX_POINTS}",
            p.points
        )));
    }
    if p.device_id.is_empty() || p.password.is_empty() {
        return Err(ProbeError::Config(
            "the probe device needs an id and a password (TEST_DEVICE_PASSWORD)".into(),
        ));
    }
    let secs = p.timeout.as_secs().max(1);
    let timeout = |what: &'static str| ProbeError::Timeout {
        address: p.address.clone(),
        what,
        secs,
    };
    let tcp = tokio::time::timeout(p.timeout, tokio::net::TcpStream::connect(&p.address))
        .await
        .map_err(|_| timeout("TCP connect"))?
        .map_err(|e| ProbeError::Connect {
            address: p.address.clone(),
            reason: e.to_string(),
        })?;
    match &p.transport {
        Transport::Plain => session(p, tcp).await,
        Transport::Tls {
            server_name,
            extra_roots,
        } => {
            let name = ServerName::try_from(server_name.clone()).map_err(|e| {
                ProbeError::Config(format!("{server_name:?} is not a host name: {e}"))
            })?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(extra_roots)?));
            let tls = tokio::time::timeout(p.timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| timeout("TLS handshake"))?
                .map_err(|e| ProbeError::Tls {
                    address: p.address.clone(),
                    reason: tls_reason(&e, server_name),
                })?;
            session(p, tls).await
        }
    }
}

/// The MQTT conversation over an established stream.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    p: &Probe,
    mut s: S,
) -> Result<Delivery, ProbeError> {
    let mut wire = Wire {
        address: &p.address,
        timeout: p.timeout,
        buf: BytesMut::with_capacity(4096),
    };
    let mut connect = Connect::new(format!("{}-verify-{}", p.device_id, std::process::id()));
    connect.keep_alive = 30;
    connect.clean_session = true;
    connect.set_login(p.device_id.clone(), p.password.clone());
    wire.send(&mut s, Packet::Connect(connect)).await?;
    match wire
        .receive(
            &mut s,
            "before answering CONNECT",
            "A TLS port spoken to in plain, or the broker's handshake timeout? `deployer logs <env> ingest`",
            "CONNACK",
        )
        .await?
    {
        Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => {}
        Packet::ConnAck(ack) => {
            return Err(ProbeError::Refused {
                address: p.address.clone(),
                device: p.device_id.clone(),
                code: ack.code as u8,
                reason: refusal(ack.code, &p.device_id),
            })
        }
        other => {
            return Err(wire.protocol(format!("expected CONNACK, got {other:?}")));
        }
    }

    let times = point_times(p.points, now_ms());
    let topic = topic(&p.device_id);
    for (i, t) in times.iter().enumerate() {
        let mut publish = Publish::new(topic.clone(), QoS::AtLeastOnce, payload(*t));
        publish.pkid = i as u16 + 1;
        wire.send(&mut s, Packet::Publish(publish)).await?;
    }
    let mut acked = vec![false; times.len()];
    while acked.iter().any(|a| !a) {
        let hint = format!(
            "{} of {} points acknowledged. The probe device may publish only to {topic}: is {:?} a device account? `deployer logs <env> ingest`",
            acked.iter().filter(|a| **a).count(),
            times.len(),
            p.device_id
        );
        match wire
            .receive(&mut s, "before acknowledging every point", &hint, "PUBACK")
            .await?
        {
            Packet::PubAck(ack) => {
                let i = usize::from(ack.pkid).wrapping_sub(1);
                match acked.get_mut(i) {
                    Some(a) => *a = true,
                    None => {
                        return Err(wire.protocol(format!("PUBACK for unknown packet {}", ack.pkid)))
                    }
                }
            }
            Packet::PingResp => {}
            other => return Err(wire.protocol(format!("expected PUBACK, got {other:?}"))),
        }
    }
    // A clean goodbye; the points are already acknowledged, so errors here do not matter.
    let _ = wire.send(&mut s, Packet::Disconnect).await;
    let _ = s.shutdown().await;
    Ok(Delivery { times_ms: times })
}

/// Packet framing over the stream, each wait bounded.
struct Wire<'a> {
    address: &'a str,
    timeout: Duration,
    buf: BytesMut,
}

impl Wire<'_> {
    fn protocol(&self, reason: String) -> ProbeError {
        ProbeError::Protocol {
            address: self.address.to_owned(),
            reason,
        }
    }

    async fn send<S: AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        packet: Packet,
    ) -> Result<(), ProbeError> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, MAX_PACKET)
            .map_err(|e| self.protocol(format!("cannot encode a packet: {e}")))?;
        s.write_all(&out)
            .await
            .map_err(|e| self.protocol(format!("cannot send: {e}")))?;
        s.flush()
            .await
            .map_err(|e| self.protocol(format!("cannot send: {e}")))
    }

    async fn receive<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        when: &'static str,
        hint: &str,
        waiting_for: &'static str,
    ) -> Result<Packet, ProbeError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let address = self.address;
        let closed = || ProbeError::Closed {
            address: address.to_owned(),
            when,
            hint: hint.to_owned(),
        };
        loop {
            // A TLS record (alert or handshake, version 3.x) where MQTT was expected: type 1
            // (CONNECT) is never sent by a broker, so this cannot be a real packet.
            if matches!(self.buf.get(..2), Some([0x15 | 0x16, 0x03])) {
                return Err(self.protocol(
                    "the server answered with TLS: this port expects MQTT over TLS (8883), not plain MQTT".into(),
                ));
            }
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(self.protocol(format!("unreadable packet: {e}"))),
            }
            let read = tokio::time::timeout_at(deadline, s.read_buf(&mut self.buf))
                .await
                .map_err(|_| ProbeError::Timeout {
                    address: address.to_owned(),
                    what: waiting_for,
                    secs: self.timeout.as_secs().max(1),
                })?;
            match read {
                Ok(0) => return Err(closed()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Err(closed())
                }
                Err(e) => return Err(self.protocol(format!("cannot read: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_distinct_past_and_in_order() {
        let t = point_times(3, 1_000_000);
        assert_eq!(t, vec![997_000, 998_000, 999_000]);
        assert!(payload(5).starts_with(r#"{"time": 5, "lat""#));
        let v: serde_json::Value = serde_json::from_str(&payload(5)).unwrap();
        assert_eq!(v["attributes"]["probe"], "deployer verify");
    }

    #[test]
    fn every_refusal_says_what_to_do() {
        let bad = refusal(ConnectReturnCode::BadUserNamePassword, "deployer-probe");
        assert!(
            bad.contains("not registered or its secret differs")
                && bad.contains("deployer deploy <env>"),
            "{bad}"
        );
        let denied = refusal(ConnectReturnCode::NotAuthorized, "deployer-probe");
        assert!(
            denied.contains("disabled") && denied.contains("device enable deployer-probe"),
            "{denied}"
        );
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let p = Probe {
            address: "mqtt.example.org:8883".into(),
            transport: Transport::Plain,
            device_id: "deployer-probe".into(),
            password: "hunter2-hunter2-hunter2-hunter2".into(),
            points: 3,
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{p:?}").contains("hunter2"));
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
