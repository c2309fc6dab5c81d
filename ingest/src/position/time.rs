//! Reading fix times: RFC 3339 text, epoch milliseconds, epoch seconds. Every result is
//! truncated to whole microseconds (the precision of PostgreSQL `timestamptz`).

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Number;

use super::fields::{exact_number, string};
use super::point::Fail;
use super::reason::RejectReason;
use super::topic::shorten;

/// A time in whole microseconds since the Unix epoch, if chrono can represent it.
fn from_micros(field: &str, micros: Option<i64>) -> Result<DateTime<Utc>, Fail> {
    micros
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| {
            Fail::new(
                RejectReason::InvalidTime,
                format!("field `{field}` is outside the representable time range"),
            )
        })
}

/// Drops sub-microsecond digits.
pub(crate) fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

/// `unit_micros` microseconds per unit of `n` (1000 for ms, 1_000_000 for s).
fn epoch(field: &str, n: &Number, unit_micros: i64) -> Result<DateTime<Utc>, Fail> {
    let micros = if let Some(i) = n.as_i64() {
        i.checked_mul(unit_micros)
    } else {
        // Fractional (or beyond i64) values: go through f64, rounding to the microsecond.
        let f = n.as_f64().unwrap_or(f64::NAN) * unit_micros as f64;
        if f.is_finite() && f.abs() < 9.0e18 {
            Some(f.round() as i64)
        } else {
            None
        }
    };
    from_micros(field, micros)
}

/// Epoch milliseconds (a JSON number).
pub(crate) fn epoch_millis(field: &str, raw: &RawValue) -> Result<Option<DateTime<Utc>>, Fail> {
    match exact_number(field, raw)? {
        Some(n) => epoch(field, &n, 1_000).map(Some),
        None => Ok(None),
    }
}

/// Epoch seconds (a JSON number).
pub(crate) fn epoch_seconds(field: &str, raw: &RawValue) -> Result<Option<DateTime<Utc>>, Fail> {
    match exact_number(field, raw)? {
        Some(n) => epoch(field, &n, 1_000_000).map(Some),
        None => Ok(None),
    }
}

/// RFC 3339 text (`"2026-11-27T18:05:00.123Z"`, any offset) or epoch milliseconds.
pub(crate) fn rfc3339_or_millis(
    field: &str,
    raw: &RawValue,
) -> Result<Option<DateTime<Utc>>, Fail> {
    if !raw.get().starts_with('"') {
        return epoch_millis(field, raw);
    }
    let Some(text) = string(field, raw)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(truncate_to_micros(t.with_timezone(&Utc))))
        .map_err(|e| {
            Fail::new(
                RejectReason::InvalidTime,
                format!(
                    "field `{field}` {:?} is not an RFC 3339 time ({e}); send e.g. \"2026-11-27T18:05:00Z\" or epoch milliseconds",
                    shorten(&text)
                ),
            )
        })
}
