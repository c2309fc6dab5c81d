//! The project's own JSON point (`devices/{device_id}/positions`): field names, aliases and
//! units. Unknown top-level fields become attributes.

use super::fields::{number, object_fields, set_once, Attributes};
use super::point::{Fail, RawPoint};
use super::time::rfc3339_or_millis;

/// Reads one point object.
pub(crate) fn parse(text: &str, max_attributes_bytes: usize) -> Result<RawPoint, Fail> {
    let fields = object_fields(text)?;
    let mut time = None;
    let (mut lat, mut lon) = (None, None);
    let mut point = RawPoint::default();
    let mut attributes = Attributes::new(max_attributes_bytes);
    for (key, raw) in fields.0 {
        match key.as_ref() {
            "time" | "ts" => set_once(&mut time, "time", rfc3339_or_millis(&key, raw)?)?,
            "lat" | "latitude" => set_once(&mut lat, "lat", number(&key, raw)?)?,
            "lon" | "longitude" => set_once(&mut lon, "lon", number(&key, raw)?)?,
            "alt" => set_once(&mut point.alt, "alt", number(&key, raw)?)?,
            "speed" => set_once(&mut point.speed, "speed", number(&key, raw)?)?,
            "heading" => set_once(&mut point.heading, "heading", number(&key, raw)?)?,
            "accuracy" => set_once(&mut point.accuracy, "accuracy", number(&key, raw)?)?,
            "satellites" => set_once(&mut point.satellites, "satellites", number(&key, raw)?)?,
            "battery" => set_once(&mut point.battery, "battery", number(&key, raw)?)?,
            "attributes" => attributes.explicit(raw)?,
            _ => attributes.extra(key, raw)?,
        }
    }
    // JSON-level problems (depth, huge numbers) first, then missing fields.
    point.attributes = attributes.finish()?;
    point.time = time.ok_or_else(|| Fail::missing("time (or ts)"))?;
    point.lat = lat.ok_or_else(|| Fail::missing("lat (or latitude)"))?;
    point.lon = lon.ok_or_else(|| Fail::missing("lon (or longitude)"))?;
    Ok(point)
}
