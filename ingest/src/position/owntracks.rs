//! OwnTracks JSON (`owntracks/{user}/{device}`): `_type: "location"` messages become points
//! (`tst` epoch seconds, `vel` km/h converted to m/s); other `_type`s are not positions.

use super::fields::{number, object_fields, set_once, string, Attributes};
use super::point::{Fail, RawPoint};
use super::reason::RejectReason;
use super::time::epoch_seconds;
use super::topic::shorten;

/// One OwnTracks message.
#[derive(Debug)]
pub(crate) enum Message {
    Location(RawPoint),
    /// Not a position (`lwt`, `transition`, `card`, ...): the `Decoded::Ignored` reason.
    Other(&'static str),
}

fn ignored_reason(kind: &str) -> &'static str {
    match kind {
        "lwt" => "owntracks_lwt",
        "transition" => "owntracks_transition",
        "card" => "owntracks_card",
        "status" => "owntracks_status",
        "waypoint" => "owntracks_waypoint",
        "waypoints" => "owntracks_waypoints",
        "beacon" => "owntracks_beacon",
        "cmd" => "owntracks_cmd",
        "steps" => "owntracks_steps",
        "configuration" => "owntracks_configuration",
        "request" => "owntracks_request",
        _ => "owntracks_other_type",
    }
}

const KM_PER_H_IN_M_PER_S: f64 = 1.0 / 3.6;

/// Reads one OwnTracks message object.
pub(crate) fn parse(text: &str, max_attributes_bytes: usize) -> Result<Message, Fail> {
    let fields = object_fields(text)?;
    let mut kind = None;
    for (key, raw) in &fields.0 {
        if key == "_type" {
            set_once(&mut kind, "_type", string(key, raw)?)?;
        }
    }
    let kind = kind.ok_or_else(|| Fail::missing("_type"))?;
    match kind.as_str() {
        "location" => {}
        "encrypted" => return Err(Fail::new(
            RejectReason::InvalidField,
            "OwnTracks payload encryption is not supported: turn off the encryption key in the app",
        )),
        other => {
            tracing::trace!(kind = shorten(other), "OwnTracks message is not a location");
            return Ok(Message::Other(ignored_reason(other)));
        }
    }

    let mut time = None;
    let (mut lat, mut lon) = (None, None);
    let mut point = RawPoint::default();
    let mut attributes = Attributes::new(max_attributes_bytes);
    for (key, raw) in fields.0 {
        match key.as_ref() {
            "_type" => {}
            "tst" => set_once(&mut time, "tst", epoch_seconds(&key, raw)?)?,
            "lat" => set_once(&mut lat, "lat", number(&key, raw)?)?,
            "lon" => set_once(&mut lon, "lon", number(&key, raw)?)?,
            "alt" => set_once(&mut point.alt, "alt", number(&key, raw)?)?,
            "acc" => set_once(&mut point.accuracy, "acc", number(&key, raw)?)?,
            "vel" => set_once(
                &mut point.speed,
                "vel",
                number(&key, raw)?.map(|kmh| kmh * KM_PER_H_IN_M_PER_S),
            )?,
            "cog" => set_once(&mut point.heading, "cog", number(&key, raw)?)?,
            "batt" => set_once(&mut point.battery, "batt", number(&key, raw)?)?,
            // vac, tid, t, conn, created_at, bs, SSID, BSSID, inregions, m, p, poi, tag...
            _ => attributes.extra(key, raw)?,
        }
    }
    // JSON-level problems (depth, huge numbers) first, then missing fields.
    point.attributes = attributes.finish()?;
    point.time = time.ok_or_else(|| Fail::missing("tst"))?;
    point.lat = lat.ok_or_else(|| Fail::missing("lat"))?;
    point.lon = lon.ok_or_else(|| Fail::missing("lon"))?;
    Ok(Message::Location(point))
}
