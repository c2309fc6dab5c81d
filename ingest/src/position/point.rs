//! A point as a format parser read it (`RawPoint`, SI units, not yet range-checked) and the
//! failure type (`Fail`) that every parsing and validation step returns.

use chrono::{DateTime, Utc};

use super::reason::RejectReason;

/// One fix as read from any format: units already converted to SI, time already parsed;
/// ranges are checked afterwards by `validate`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RawPoint {
    pub time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub alt: Option<f64>,
    /// m/s
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    pub accuracy: Option<f64>,
    /// Read as a number; must be an integer in 0..=255.
    pub satellites: Option<f64>,
    pub battery: Option<f64>,
    /// Never an empty map (None instead).
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Why a point or message failed, with a human detail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fail {
    pub reason: RejectReason,
    pub detail: String,
}

impl Fail {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Fail {
        Fail {
            reason,
            detail: detail.into(),
        }
    }

    /// A required field is absent (or null).
    pub fn missing(field: &str) -> Fail {
        Fail::new(
            RejectReason::MissingField,
            format!("required field `{field}` is missing"),
        )
    }

    /// A failure from serde_json, classified into a reason.
    pub fn json(context: &str, err: &serde_json::Error) -> Fail {
        let text = err.to_string();
        let reason = if text.starts_with("recursion limit exceeded") {
            RejectReason::TooDeep
        } else if text.starts_with("number out of range") {
            RejectReason::NumberOutOfRange
        } else {
            match err.classify() {
                serde_json::error::Category::Data => RejectReason::InvalidField,
                serde_json::error::Category::Io
                | serde_json::error::Category::Syntax
                | serde_json::error::Category::Eof => RejectReason::InvalidJson,
            }
        };
        Fail::new(reason, format!("{context}: {text}"))
    }
}
