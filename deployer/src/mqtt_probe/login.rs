//! Logging in: TCP (bounded), TLS when asked (certificate checked for the MQTT domain), then
//! CONNECT and the broker's CONNACK. A refusal says what to do; the password is never in it.

use std::sync::Arc;

use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::wire::Wire;
use super::{tls, Endpoint, ProbeError, Transport};

/// A byte stream to the broker, TLS or plain.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A logged-in MQTT connection.
pub struct Session {
    pub io: Box<dyn Io>,
    pub wire: Wire,
}

/// The keep-alive the probe announces (seconds); it pings well within it when idle.
pub const KEEP_ALIVE_SECS: u16 = 30;

/// Connects and logs in as `ep.device_id` with a clean session and this client id.
pub async fn login(ep: &Endpoint, client_id: String) -> Result<Session, ProbeError> {
    ep.check()?;
    let secs = ep.timeout.as_secs().max(1);
    let timeout = |what: &'static str| ProbeError::Timeout {
        address: ep.address.clone(),
        what,
        secs,
    };
    let tcp = tokio::time::timeout(ep.timeout, tokio::net::TcpStream::connect(&ep.address))
        .await
        .map_err(|_| timeout("TCP connect"))?
        .map_err(|e| ProbeError::Connect {
            address: ep.address.clone(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match &ep.transport {
        Transport::Plain => Box::new(tcp),
        Transport::Tls {
            server_name,
            extra_roots,
        } => {
            let name = ServerName::try_from(server_name.clone()).map_err(|e| {
                ProbeError::Config(format!("{server_name:?} is not a host name: {e}"))
            })?;
            let connector =
                tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(extra_roots)?));
            let stream = tokio::time::timeout(ep.timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| timeout("TLS handshake"))?
                .map_err(|e| ProbeError::Tls {
                    address: ep.address.clone(),
                    reason: tls::reason(&e, server_name),
                })?;
            Box::new(stream)
        }
    };
    let mut s = Session {
        io,
        wire: Wire::new(ep.address.clone(), ep.timeout),
    };
    let mut connect = Connect::new(client_id);
    connect.keep_alive = KEEP_ALIVE_SECS;
    connect.clean_session = true;
    connect.set_login(ep.device_id.clone(), ep.password.clone());
    s.wire.send(&mut s.io, Packet::Connect(connect)).await?;
    match s
        .wire
        .receive(
            &mut s.io,
            "before answering CONNECT",
            "A TLS port spoken to in plain, or the broker's handshake timeout? `deployer logs <env> ingest`",
            "CONNACK",
        )
        .await?
    {
        Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => Ok(s),
        Packet::ConnAck(ack) => Err(ProbeError::Refused {
            address: ep.address.clone(),
            device: ep.device_id.clone(),
            code: ack.code as u8,
            reason: refusal(ack.code, &ep.device_id),
        }),
        other => Err(s
            .wire
            .protocol(format!("expected CONNACK, got {other:?}"))),
    }
}

/// What a CONNACK refusal means for the operator.
pub fn refusal(code: ConnectReturnCode, device: &str) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword => format!(
            "bad user name or password (CONNACK 4): the probe device is not registered or its secret differs from TEST_DEVICE_PASSWORD. Next: run `deployer deploy <env>` again (ingest-migrate registers {device} with the env's TEST_DEVICE_PASSWORD), then verify"
        ),
        ConnectReturnCode::NotAuthorized => format!(
            "not authorized (CONNACK 5): the account {device} is disabled (ingest-migrate never re-enables it: `deployer ssh <env> -- docker compose -f /opt/accoreboot/docker-compose.yml run --rm ingest-migrate device enable {device}`). Next: enable it, then verify again"
        ),
        ConnectReturnCode::ServiceUnavailable => {
            "server unavailable (CONNACK 3): the ingest refused the login for load, i.e. retry later (its connection or connection-rate limit is reached, or it cannot reach its account registry, the database). Next: verify again in a few seconds; if it persists, `deployer logs <env> ingest` and `deployer status <env>`".into()
        }
        ConnectReturnCode::BadClientId => "client identifier refused (CONNACK 2)".into(),
        ConnectReturnCode::RefusedProtocolVersion => {
            "MQTT 3.1.1 refused (CONNACK 1): is this the AccoReboot ingest?".into()
        }
        ConnectReturnCode::Success => "accepted".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let busy = refusal(ConnectReturnCode::ServiceUnavailable, "deployer-probe");
        assert!(
            busy.contains("retry later") && busy.contains("verify again"),
            "{busy}"
        );
    }
}
