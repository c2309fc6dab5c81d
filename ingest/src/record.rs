//! The WAL record of one MQTT message: when it was received, plus the decoded positions and
//! rejects (the position module's compact binary encoding).
//!
//! Layout: `received_at` as little-endian i64 microseconds since the Unix epoch, then
//! `position::encode_record` bytes.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::position::{self, Position, Reject};

/// One decoded MQTT message as kept in the WAL.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub received_at: DateTime<Utc>,
    pub positions: Vec<Position>,
    pub rejects: Vec<Reject>,
}

#[derive(Debug, Error)]
pub enum EnvelopeError {
    #[error("WAL record too short ({0} bytes) to hold a reception time")]
    TooShort(usize),
    #[error("WAL record has an impossible reception time ({0} µs)")]
    BadTime(i64),
    #[error("WAL record body: {0}")]
    Body(#[from] position::RecordError),
}

pub fn encode(received_at: DateTime<Utc>, positions: &[Position], rejects: &[Reject]) -> Bytes {
    let body = position::encode_record(positions, rejects);
    let mut out = BytesMut::with_capacity(8 + body.len());
    out.put_i64_le(received_at.timestamp_micros());
    out.put_slice(&body);
    out.freeze()
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let Some((head, body)) = bytes.split_first_chunk::<8>() else {
        return Err(EnvelopeError::TooShort(bytes.len()));
    };
    let micros = i64::from_le_bytes(*head);
    let received_at =
        DateTime::<Utc>::from_timestamp_micros(micros).ok_or(EnvelopeError::BadTime(micros))?;
    let (positions, rejects) = position::decode_record(body)?;
    Ok(Envelope {
        received_at,
        positions,
        rejects,
    })
}
