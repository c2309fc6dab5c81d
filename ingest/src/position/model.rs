//! The values that leave the position module: a validated `Position`, a `Reject` and the
//! outcome of decoding one MQTT message, `Decoded`.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::reason::RejectReason;

/// One validated GPS fix, ready for the database.
///
/// Units are SI: metres, metres per second, degrees. `time` is UTC with microsecond precision
/// (finer digits are truncated at decode time, matching PostgreSQL `timestamptz`).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The device that produced the fix (authenticated identity, else the topic's id).
    pub device_id: String,
    /// When the fix was taken (device clock), microsecond precision.
    pub time: DateTime<Utc>,
    /// Latitude in degrees, [-90, 90].
    pub lat: f64,
    /// Longitude in degrees, [-180, 180].
    pub lon: f64,
    /// Altitude in metres above sea level.
    pub alt: Option<f64>,
    /// Ground speed in m/s (converted from km/h for OwnTracks and Teltonika).
    pub speed: Option<f64>,
    /// Course over ground in degrees, normalised into [0, 360).
    pub heading: Option<f64>,
    /// Horizontal accuracy radius in metres.
    pub accuracy: Option<f64>,
    /// Satellites used for the fix, 0..=255.
    pub satellites: Option<i16>,
    /// Battery level in percent, [0, 100].
    pub battery: Option<f64>,
    /// Everything else the device sent, as a JSON object (stored as jsonb).
    pub attributes: Option<serde_json::Value>,
}

/// A message, or one element of it, that was not stored as a position.
///
/// Rejects are stored (rejects table) and counted (metrics), never silently dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// The device, when it could be determined (not for an unknown topic, for instance).
    pub device_id: Option<String>,
    /// The MQTT topic the message arrived on.
    pub topic: String,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// A human explanation (which field, which value, which limit).
    pub detail: String,
    /// Raw bytes: the whole message, or only the offending array element.
    pub payload: Bytes,
}

/// The outcome of decoding one MQTT message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Valid points to store and rejects to record; either list may be empty, not both.
    Accepted {
        positions: Vec<Position>,
        rejects: Vec<Reject>,
    },
    /// A well-formed message that carries no position (e.g. an OwnTracks `lwt` or `card`).
    /// Counted in metrics, not stored.
    Ignored { reason: &'static str },
}

impl Decoded {
    /// The positions, empty when ignored.
    pub fn positions(&self) -> &[Position] {
        match self {
            Decoded::Accepted { positions, .. } => positions,
            Decoded::Ignored { .. } => &[],
        }
    }

    /// The rejects, empty when ignored.
    pub fn rejects(&self) -> &[Reject] {
        match self {
            Decoded::Accepted { rejects, .. } => rejects,
            Decoded::Ignored { .. } => &[],
        }
    }
}
