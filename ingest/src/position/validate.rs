//! Range and plausibility checks that turn a `RawPoint` into a `Position`.

use chrono::{DateTime, Utc};

use super::config::ValidationConfig;
use super::model::Position;
use super::point::{Fail, RawPoint};
use super::reason::RejectReason;

fn finite(field: &str, value: Option<f64>) -> Result<(), Fail> {
    match value {
        Some(v) if !v.is_finite() => Err(Fail::new(
            RejectReason::InvalidField,
            format!("field `{field}` is not a finite number"),
        )),
        _ => Ok(()),
    }
}

fn saturating_micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Normalises a heading into [0, 360).
fn normalise_heading(h: f64) -> f64 {
    let n = h.rem_euclid(360.0);
    // rem_euclid of a tiny negative number rounds up to exactly 360.0.
    if n >= 360.0 {
        0.0
    } else {
        n
    }
}

/// Checks `point` against `cfg` and builds the position of `device_id`.
pub(crate) fn validate(
    point: RawPoint,
    device_id: &str,
    received_at: DateTime<Utc>,
    cfg: &ValidationConfig,
) -> Result<Position, Fail> {
    let RawPoint {
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
    } = point;
    for (field, value) in [
        ("lat", Some(lat)),
        ("lon", Some(lon)),
        ("alt", alt),
        ("speed", speed),
        ("heading", heading),
        ("accuracy", accuracy),
        ("satellites", satellites),
        ("battery", battery),
    ] {
        finite(field, value)?;
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(Fail::new(
            RejectReason::LatitudeOutOfRange,
            format!("latitude {lat} is outside [-90, 90]"),
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(Fail::new(
            RejectReason::LongitudeOutOfRange,
            format!("longitude {lon} is outside [-180, 180]"),
        ));
    }
    if lat == 0.0 && lon == 0.0 && !cfg.allow_null_island {
        return Err(Fail::new(
            RejectReason::NullIsland,
            "latitude and longitude are both 0 (no GPS fix?)",
        ));
    }

    let ahead = time
        .timestamp_micros()
        .saturating_sub(received_at.timestamp_micros());
    if ahead > saturating_micros(cfg.max_future) {
        return Err(Fail::new(
            RejectReason::TimeInFuture,
            format!(
                "time {} is {} s ahead of reception (limit {} s): check the device clock",
                time.to_rfc3339(),
                ahead / 1_000_000,
                cfg.max_future.as_secs()
            ),
        ));
    }
    if ahead.saturating_neg() > saturating_micros(cfg.max_past) {
        return Err(Fail::new(
            RejectReason::TimeTooOld,
            format!(
                "time {} is {} s before reception (limit {} s)",
                time.to_rfc3339(),
                ahead.saturating_neg() / 1_000_000,
                cfg.max_past.as_secs()
            ),
        ));
    }

    if let Some(s) = speed {
        if !(0.0..=cfg.max_speed).contains(&s) {
            return Err(Fail::new(
                RejectReason::SpeedOutOfRange,
                format!("speed {s} m/s is outside [0, {}]", cfg.max_speed),
            ));
        }
    }
    if let Some(a) = accuracy {
        let max = cfg.max_accuracy.unwrap_or(f64::INFINITY);
        if !(0.0..=max).contains(&a) {
            return Err(Fail::new(
                RejectReason::AccuracyOutOfRange,
                format!("accuracy {a} m is outside [0, {max}]"),
            ));
        }
    }
    let satellites = match satellites {
        None => None,
        Some(s) if s.fract() == 0.0 && (0.0..=255.0).contains(&s) => Some(s as i16),
        Some(s) => {
            return Err(Fail::new(
                RejectReason::SatellitesOutOfRange,
                format!("satellites {s} is not an integer in 0..=255"),
            ))
        }
    };
    if let Some(b) = battery {
        if !(0.0..=100.0).contains(&b) {
            return Err(Fail::new(
                RejectReason::BatteryOutOfRange,
                format!("battery {b} % is outside [0, 100]"),
            ));
        }
    }

    Ok(Position {
        device_id: device_id.to_owned(),
        time,
        lat,
        lon,
        alt,
        speed,
        heading: heading.map(normalise_heading),
        accuracy,
        satellites,
        battery,
        attributes: attributes.map(serde_json::Value::Object),
    })
}

#[cfg(test)]
mod tests {
    use super::normalise_heading;

    #[test]
    fn heading_normalises_into_0_360() {
        assert_eq!(normalise_heading(360.0), 0.0);
        assert_eq!(normalise_heading(-90.0), 270.0);
        assert_eq!(normalise_heading(725.0), 5.0);
        assert_eq!(normalise_heading(-1e-20), 0.0);
        assert_eq!(normalise_heading(359.5), 359.5);
    }
}
