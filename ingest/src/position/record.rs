//! The compact binary form of one decoded message, as stored in the WAL.
//!
//! Format version 1 (all integers little-endian, `varint` = unsigned LEB128, at most 10 bytes):
//!
//! ```text
//! record   = version:u8 (=1) n_positions:varint n_rejects:varint position* reject*
//! position = flags:u8 [device_id:str] time_micros:i64 lat:f64 lon:f64
//!            [alt:f64] [speed:f64] [heading:f64] [accuracy:f64] [satellites:i16]
//!            [battery:f64] [attributes:str (JSON text)]
//!   flags bit 0..6: alt, speed, heading, accuracy, satellites, battery, attributes present
//!   flags bit 7: device_id is the previous position's (then no device_id follows)
//! reject   = flags:u8 [device_id:str] topic:str reason:u8 detail:str payload:bytes
//!   flags bit 0: device_id present; other bits must be 0
//! str      = len:varint utf-8 bytes     bytes = len:varint bytes
//! ```
//!
//! Decoding never panics and never allocates more than the input can describe: corrupt input
//! gives a `RecordError`. The CRC that guards against torn writes belongs to the WAL framing.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::DateTime;

use super::model::{Position, Reject};
use super::reason::RejectReason;

/// The format version written by `encode_record`.
pub const RECORD_VERSION: u8 = 1;

const ALT: u8 = 1 << 0;
const SPEED: u8 = 1 << 1;
const HEADING: u8 = 1 << 2;
const ACCURACY: u8 = 1 << 3;
const SATELLITES: u8 = 1 << 4;
const BATTERY: u8 = 1 << 5;
const ATTRIBUTES: u8 = 1 << 6;
const SAME_DEVICE: u8 = 1 << 7;
const REJECT_HAS_DEVICE: u8 = 1 << 0;

/// Smallest encoded position: flags, time, lat, lon.
const MIN_POSITION_BYTES: usize = 1 + 8 + 8 + 8;
/// Smallest encoded reject: flags, topic len, reason, detail len, payload len.
const MIN_REJECT_BYTES: usize = 5;

/// Why record bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unsupported record format version {0} (this build reads version {RECORD_VERSION})")]
    UnsupportedVersion(u8),
    #[error("record truncated while reading {0}")]
    Truncated(&'static str),
    #[error("malformed varint while reading {0}")]
    BadVarint(&'static str),
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    #[error("time {0} µs is outside the representable range")]
    TimeOutOfRange(i64),
    #[error("unknown reject reason code {0}")]
    UnknownReason(u8),
    #[error("unknown flag bits {0:#04x} in a reject")]
    UnknownFlags(u8),
    #[error("the first position refers to a previous device id")]
    NoPreviousDevice,
    #[error("attributes are not valid JSON: {0}")]
    Attributes(String),
    #[error("{0} unexpected bytes after the record")]
    TrailingBytes(usize),
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// Encodes a decoded message (its positions and rejects) for the WAL.
pub fn encode_record(positions: &[Position], rejects: &[Reject]) -> Bytes {
    let estimate = 1
        + 20
        + positions
            .iter()
            .map(|p| MIN_POSITION_BYTES + 8 * 4 + p.device_id.len() + 2)
            .sum::<usize>()
        + rejects
            .iter()
            .map(|r| r.topic.len() + r.detail.len() + r.payload.len() + 96)
            .sum::<usize>();
    let mut buf = BytesMut::with_capacity(estimate);
    buf.put_u8(RECORD_VERSION);
    put_varint(&mut buf, positions.len() as u64);
    put_varint(&mut buf, rejects.len() as u64);

    let mut previous: Option<&str> = None;
    for p in positions {
        let attributes = p.attributes.as_ref().map(|a| a.to_string());
        let mut flags = 0u8;
        for (bit, present) in [
            (ALT, p.alt.is_some()),
            (SPEED, p.speed.is_some()),
            (HEADING, p.heading.is_some()),
            (ACCURACY, p.accuracy.is_some()),
            (SATELLITES, p.satellites.is_some()),
            (BATTERY, p.battery.is_some()),
            (ATTRIBUTES, attributes.is_some()),
        ] {
            if present {
                flags |= bit;
            }
        }
        let same = previous == Some(p.device_id.as_str());
        if same {
            flags |= SAME_DEVICE;
        }
        buf.put_u8(flags);
        if !same {
            put_bytes(&mut buf, p.device_id.as_bytes());
            previous = Some(&p.device_id);
        }
        buf.put_i64_le(p.time.timestamp_micros());
        buf.put_f64_le(p.lat);
        buf.put_f64_le(p.lon);
        for v in [p.alt, p.speed, p.heading, p.accuracy]
            .into_iter()
            .flatten()
        {
            buf.put_f64_le(v);
        }
        if let Some(s) = p.satellites {
            buf.put_i16_le(s);
        }
        if let Some(b) = p.battery {
            buf.put_f64_le(b);
        }
        if let Some(a) = &attributes {
            put_bytes(&mut buf, a.as_bytes());
        }
    }

    for r in rejects {
        match &r.device_id {
            Some(id) => {
                buf.put_u8(REJECT_HAS_DEVICE);
                put_bytes(&mut buf, id.as_bytes());
            }
            None => buf.put_u8(0),
        }
        put_bytes(&mut buf, r.topic.as_bytes());
        buf.put_u8(r.reason.code());
        put_bytes(&mut buf, r.detail.as_bytes());
        put_bytes(&mut buf, &r.payload);
    }
    buf.freeze()
}

/// A bounds-checked cursor over record bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.bytes.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, RecordError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        Ok(i16::from_le_bytes(self.array(what)?))
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(RecordError::BadVarint(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::BadVarint(what))
    }

    /// A length prefix that must fit in the remaining bytes.
    fn len(&mut self, what: &'static str) -> Result<usize, RecordError> {
        let n = self.varint(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.bytes.len() => Ok(n),
            _ => Err(RecordError::Truncated(what)),
        }
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], RecordError> {
        let n = self.len(what)?;
        self.take(n, what)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.bytes(what)?).map_err(|_| RecordError::InvalidUtf8(what))
    }

    /// A count of items at least `min_bytes` each; the capacity it may reserve.
    /// A count of items of at least `min_bytes` each, checked against the remaining bytes.
    fn count(&mut self, what: &'static str, min_bytes: usize) -> Result<usize, RecordError> {
        let n = self.varint(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.bytes.len() / min_bytes => Ok(n),
            _ => Err(RecordError::Truncated(what)),
        }
    }
}

/// Decodes bytes written by `encode_record`.
pub fn decode_record(bytes: &[u8]) -> Result<(Vec<Position>, Vec<Reject>), RecordError> {
    let mut r = Reader { bytes };
    let version = r.u8("version").map_err(|_| RecordError::Empty)?;
    if version != RECORD_VERSION {
        return Err(RecordError::UnsupportedVersion(version));
    }
    let n_positions = r.count("position count", MIN_POSITION_BYTES)?;
    let n_rejects = r.count("reject count", MIN_REJECT_BYTES)?;
    let mut positions: Vec<Position> = Vec::with_capacity(n_positions);

    for _ in 0..n_positions {
        let flags = r.u8("position flags")?;
        let device_id = if flags & SAME_DEVICE != 0 {
            positions
                .last()
                .map(|p| p.device_id.clone())
                .ok_or(RecordError::NoPreviousDevice)?
        } else {
            r.str("device id")?.to_owned()
        };
        let micros = r.i64("time")?;
        let time =
            DateTime::from_timestamp_micros(micros).ok_or(RecordError::TimeOutOfRange(micros))?;
        let lat = r.f64("latitude")?;
        let lon = r.f64("longitude")?;
        let mut opt = |bit: u8, what| -> Result<Option<f64>, RecordError> {
            if flags & bit != 0 {
                r.f64(what).map(Some)
            } else {
                Ok(None)
            }
        };
        let alt = opt(ALT, "altitude")?;
        let speed = opt(SPEED, "speed")?;
        let heading = opt(HEADING, "heading")?;
        let accuracy = opt(ACCURACY, "accuracy")?;
        let satellites = if flags & SATELLITES != 0 {
            Some(r.i16("satellites")?)
        } else {
            None
        };
        let battery = if flags & BATTERY != 0 {
            Some(r.f64("battery")?)
        } else {
            None
        };
        let attributes = if flags & ATTRIBUTES != 0 {
            let text = r.bytes("attributes")?;
            Some(
                serde_json::from_slice::<serde_json::Value>(text)
                    .map_err(|e| RecordError::Attributes(e.to_string()))?,
            )
        } else {
            None
        };
        positions.push(Position {
            device_id,
            time,
            lat,
            lon,
            alt,
            speed,
            heading,
            accuracy,
            satellites,
            battery,
            attributes,
        });
    }

    if n_rejects > r.bytes.len() / MIN_REJECT_BYTES {
        return Err(RecordError::Truncated("reject count"));
    }
    let mut rejects = Vec::with_capacity(n_rejects);
    for _ in 0..n_rejects {
        let flags = r.u8("reject flags")?;
        if flags & !REJECT_HAS_DEVICE != 0 {
            return Err(RecordError::UnknownFlags(flags));
        }
        let device_id = if flags & REJECT_HAS_DEVICE != 0 {
            Some(r.str("reject device id")?.to_owned())
        } else {
            None
        };
        let topic = r.str("reject topic")?.to_owned();
        let code = r.u8("reject reason")?;
        let reason = RejectReason::from_code(code).ok_or(RecordError::UnknownReason(code))?;
        let detail = r.str("reject detail")?.to_owned();
        let payload = Bytes::copy_from_slice(r.bytes("reject payload")?);
        rejects.push(Reject {
            device_id,
            topic,
            reason,
            detail,
            payload,
        });
    }

    if !r.bytes.is_empty() {
        return Err(RecordError::TrailingBytes(r.bytes.len()));
    }
    Ok((positions, rejects))
}
