//! Teltonika Codec JSON over MQTT (`{imei}/data`):
//! `{"state":{"reported":{"ts":ms,"latlng":"lat,lon","alt","ang","sat","sp"(km/h),...}}}`.
//! IO elements and other reported fields become attributes.

use serde_json::value::RawValue;

use super::fields::{number, object_fields, set_once, string, Attributes};
use super::point::{Fail, RawPoint};
use super::reason::RejectReason;
use super::time::epoch_millis;
use super::topic::shorten;

const KM_PER_H_IN_M_PER_S: f64 = 1.0 / 3.6;

/// The object under `key` in `text`.
fn member<'a>(text: &'a str, key: &str) -> Result<&'a RawValue, Fail> {
    let fields = object_fields(text)?;
    let mut found = None;
    for (k, raw) in fields.0 {
        if k == key {
            set_once(&mut found, key, Some(raw))?;
        }
    }
    let raw = found.ok_or_else(|| Fail::missing(key))?;
    if !raw.get().starts_with('{') {
        return Err(Fail::new(
            RejectReason::NotAnObject,
            format!("field `{key}` must be a JSON object"),
        ));
    }
    Ok(raw)
}

/// `"lat,lon"` as two finite numbers.
fn latlng(raw: &RawValue) -> Result<Option<(f64, f64)>, Fail> {
    let Some(text) = string("latlng", raw)? else {
        return Ok(None);
    };
    let bad = || {
        Fail::new(
            RejectReason::InvalidField,
            format!(
                "field `latlng` {:?} is not \"lat,lon\" in decimal degrees",
                shorten(&text)
            ),
        )
    };
    let (lat, lon) = text.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    if lat.is_finite() && lon.is_finite() {
        Ok(Some((lat, lon)))
    } else {
        Err(bad())
    }
}

/// Reads one Codec JSON message.
pub(crate) fn parse(text: &str, max_attributes_bytes: usize) -> Result<RawPoint, Fail> {
    let state = member(text, "state")?;
    let reported = member(state.get(), "reported")?;
    let fields = object_fields(reported.get())?;
    let mut time = None;
    let mut position = None;
    let mut point = RawPoint::default();
    let mut attributes = Attributes::new(max_attributes_bytes);
    for (key, raw) in fields.0 {
        match key.as_ref() {
            "ts" => set_once(&mut time, "ts", epoch_millis(&key, raw)?)?,
            "latlng" => set_once(&mut position, "latlng", latlng(raw)?)?,
            "alt" => set_once(&mut point.alt, "alt", number(&key, raw)?)?,
            "ang" => set_once(&mut point.heading, "ang", number(&key, raw)?)?,
            "sat" => set_once(&mut point.satellites, "sat", number(&key, raw)?)?,
            "sp" => set_once(
                &mut point.speed,
                "sp",
                number(&key, raw)?.map(|kmh| kmh * KM_PER_H_IN_M_PER_S),
            )?,
            _ => attributes.extra(key, raw)?,
        }
    }
    // JSON-level problems (depth, huge numbers) first, then missing fields.
    point.attributes = attributes.finish()?;
    point.time = time.ok_or_else(|| Fail::missing("state.reported.ts"))?;
    (point.lat, point.lon) = position.ok_or_else(|| Fail::missing("state.reported.latlng"))?;
    Ok(point)
}
