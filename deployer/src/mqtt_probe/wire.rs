//! Packet framing over the probe's stream (rumqttc's MQTT 3.1.1 codec): send a packet, take
//! the next one out of what was read, read more. A TLS record where MQTT was expected and a
//! closed connection become errors that say what happened.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{ProbeError, MAX_PACKET};

/// The framing state of one connection.
pub struct Wire {
    /// For messages: the `host:port` dialled.
    pub address: String,
    /// Limit of each bounded wait ([`Wire::receive`], [`Wire::send`]).
    pub timeout: Duration,
    /// Bytes read and not yet decoded.
    buf: BytesMut,
}

impl Wire {
    pub fn new(address: String, timeout: Duration) -> Self {
        Self {
            address,
            timeout,
            buf: BytesMut::with_capacity(4096),
        }
    }

    pub fn protocol(&self, reason: String) -> ProbeError {
        ProbeError::Protocol {
            address: self.address.clone(),
            reason,
        }
    }

    fn timed_out(&self, what: &'static str) -> ProbeError {
        ProbeError::Timeout {
            address: self.address.clone(),
            what,
            secs: self.timeout.as_secs().max(1),
        }
    }

    /// Encodes and writes one packet, within the timeout.
    pub async fn send<S: AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        packet: Packet,
    ) -> Result<(), ProbeError> {
        let mut out = BytesMut::new();
        packet
            .write(&mut out, MAX_PACKET)
            .map_err(|e| self.protocol(format!("cannot encode a packet: {e}")))?;
        let write = async {
            s.write_all(&out).await?;
            s.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| self.timed_out("sending"))?
            .map_err(|e| self.protocol(format!("cannot send: {e}")))
    }

    /// The next complete packet among the bytes already read, if any.
    pub fn buffered(&mut self) -> Result<Option<Packet>, ProbeError> {
        // A TLS record (alert or handshake, version 3.x) where MQTT was expected: type 1
        // (CONNECT) is never sent by a broker, so this cannot be a real packet.
        if matches!(self.buf.get(..2), Some([0x15 | 0x16, 0x03])) {
            return Err(self.protocol(
                "the server answered with TLS: this port expects MQTT over TLS (8883), not plain MQTT".into(),
            ));
        }
        match Packet::read(&mut self.buf, MAX_PACKET) {
            Ok(p) => Ok(Some(p)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(self.protocol(format!("unreadable packet: {e}"))),
        }
    }

    /// Reads what the stream has (at least one byte). Cancel-safe: dropped before it
    /// completes, it has read nothing. A closed connection is `Closed { when, hint }`.
    pub async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        when: &'static str,
        hint: &str,
    ) -> Result<(), ProbeError> {
        let closed = || ProbeError::Closed {
            address: self.address.clone(),
            when,
            hint: hint.to_owned(),
        };
        match s.read_buf(&mut self.buf).await {
            Ok(0) => Err(closed()),
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                Err(closed())
            }
            Err(e) => Err(self.protocol(format!("cannot read: {e}"))),
        }
    }

    /// The next packet, waiting at most the timeout for it.
    pub async fn receive<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        when: &'static str,
        hint: &str,
        waiting_for: &'static str,
    ) -> Result<Packet, ProbeError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(p) = self.buffered()? {
                return Ok(p);
            }
            tokio::time::timeout_at(deadline, self.fill(s, when, hint))
                .await
                .map_err(|_| self.timed_out(waiting_for))??;
        }
    }
}
