//! Why a message or a point was rejected: a small closed set with stable names and codes.
//!
//! The snake_case name is used as a metric label and stored in the rejects table; the numeric
//! code is stored in WAL records. Both are stable: add new variants at the end, never renumber.

use serde::{Deserialize, Serialize};

/// The reason a message (or one point of it) was not stored as a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The topic matches none of the accepted schemes.
    UnknownTopic,
    /// The device id (from the topic or the authenticated identity) breaks the id syntax.
    BadDeviceId,
    /// The topic names another device than the one that authenticated.
    TopicIdentityMismatch,
    /// The payload has no bytes.
    EmptyPayload,
    /// The payload is larger than `max_payload_bytes`.
    TooLarge,
    /// The payload is not UTF-8.
    InvalidUtf8,
    /// The payload is not well-formed JSON (syntax error, truncated).
    InvalidJson,
    /// JSON nested deeper than the parser's recursion limit (128).
    TooDeep,
    /// A JSON number too large to represent (e.g. `1e999999`).
    NumberOutOfRange,
    /// The message (or array element) is JSON but not an object of the expected shape.
    NotAnObject,
    /// The array holds more than `max_points` elements.
    TooManyPoints,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong type, is not finite, or appears twice.
    InvalidField,
    /// The time field cannot be read as RFC 3339 or epoch time.
    InvalidTime,
    /// Latitude outside [-90, 90].
    LatitudeOutOfRange,
    /// Longitude outside [-180, 180].
    LongitudeOutOfRange,
    /// Latitude and longitude are both 0 (no fix), rejected unless `allow_null_island`.
    NullIsland,
    /// Time more than `max_future` ahead of reception.
    TimeInFuture,
    /// Time more than `max_past` before reception.
    TimeTooOld,
    /// Speed negative or above `max_speed`.
    SpeedOutOfRange,
    /// Accuracy negative or above `max_accuracy`.
    AccuracyOutOfRange,
    /// Satellites outside 0..=255 or not an integer.
    SatellitesOutOfRange,
    /// Battery outside 0..=100.
    BatteryOutOfRange,
    /// The attributes (explicit and unknown fields) exceed `max_attributes_bytes`.
    AttributesTooLarge,
    /// A WAL record that could not be decoded (used by the writer, never by `decode`).
    CorruptRecord,
    /// A point the database refused permanently (e.g. a string jsonb cannot hold); used by the
    /// writer, never by `decode`.
    DatabaseRejected,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 26] = [
        RejectReason::UnknownTopic,
        RejectReason::BadDeviceId,
        RejectReason::TopicIdentityMismatch,
        RejectReason::EmptyPayload,
        RejectReason::TooLarge,
        RejectReason::InvalidUtf8,
        RejectReason::InvalidJson,
        RejectReason::TooDeep,
        RejectReason::NumberOutOfRange,
        RejectReason::NotAnObject,
        RejectReason::TooManyPoints,
        RejectReason::MissingField,
        RejectReason::InvalidField,
        RejectReason::InvalidTime,
        RejectReason::LatitudeOutOfRange,
        RejectReason::LongitudeOutOfRange,
        RejectReason::NullIsland,
        RejectReason::TimeInFuture,
        RejectReason::TimeTooOld,
        RejectReason::SpeedOutOfRange,
        RejectReason::AccuracyOutOfRange,
        RejectReason::SatellitesOutOfRange,
        RejectReason::BatteryOutOfRange,
        RejectReason::AttributesTooLarge,
        RejectReason::CorruptRecord,
        RejectReason::DatabaseRejected,
    ];

    /// Stable snake_case name (metric label, rejects table column).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownTopic => "unknown_topic",
            RejectReason::BadDeviceId => "bad_device_id",
            RejectReason::TopicIdentityMismatch => "topic_identity_mismatch",
            RejectReason::EmptyPayload => "empty_payload",
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::TooDeep => "too_deep",
            RejectReason::NumberOutOfRange => "number_out_of_range",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::TooManyPoints => "too_many_points",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::InvalidTime => "invalid_time",
            RejectReason::LatitudeOutOfRange => "latitude_out_of_range",
            RejectReason::LongitudeOutOfRange => "longitude_out_of_range",
            RejectReason::NullIsland => "null_island",
            RejectReason::TimeInFuture => "time_in_future",
            RejectReason::TimeTooOld => "time_too_old",
            RejectReason::SpeedOutOfRange => "speed_out_of_range",
            RejectReason::AccuracyOutOfRange => "accuracy_out_of_range",
            RejectReason::SatellitesOutOfRange => "satellites_out_of_range",
            RejectReason::BatteryOutOfRange => "battery_out_of_range",
            RejectReason::AttributesTooLarge => "attributes_too_large",
            RejectReason::CorruptRecord => "corrupt_record",
            RejectReason::DatabaseRejected => "database_rejected",
        }
    }

    /// Stable one-byte code used in WAL records.
    pub fn code(self) -> u8 {
        // The discriminants follow declaration order, which is frozen (see module doc).
        self as u8 + 1
    }

    /// The reason for a WAL code, if it is known.
    pub fn from_code(code: u8) -> Option<RejectReason> {
        let index = usize::from(code).checked_sub(1)?;
        RejectReason::ALL.get(index).copied()
    }

    /// The reason with this snake_case name, if any.
    pub fn from_name(name: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
