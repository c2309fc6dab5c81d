//! One GPS fix as the ingest expects it, and its JSON encoding (one object, or an array for
//! several points in one message).

use serde::Serialize;

/// One position report. Field names and units are the ingest's payload format.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Position {
    /// Epoch milliseconds; strictly increasing per device, so (device_id, time) is unique.
    pub time: i64,
    /// Degrees, WGS84.
    pub lat: f64,
    /// Degrees, WGS84.
    pub lon: f64,
    /// Metres above sea level.
    pub alt: f64,
    /// Metres per second.
    pub speed: f64,
    /// Degrees clockwise from north, [0, 360).
    pub heading: f64,
    /// Horizontal accuracy in metres.
    pub accuracy: f64,
    /// Satellites in view.
    pub satellites: u8,
    /// Battery charge in percent.
    pub battery: f64,
}

/// Appends the payload for `points` to `out`: a single object for one point, a JSON array
/// for more (an empty slice gives `[]`). `out` is not cleared, so a caller can reuse one
/// buffer.
pub fn encode_payload(points: &[Position], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail, and a struct of plain numbers always serializes
    // (serde_json writes non-finite floats as null rather than failing).
    let result = match points {
        [one] => serde_json::to_writer(&mut *out, one),
        many => serde_json::to_writer(&mut *out, many),
    };
    debug_assert!(result.is_ok(), "serializing positions failed: {result:?}");
}

/// A rough size of one encoded point, to size buffers without reallocating.
pub const ENCODED_POINT_HINT: usize = 180;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(time: i64) -> Position {
        Position {
            time,
            lat: 48.8566,
            lon: 2.3522,
            alt: 35.5,
            speed: 12.25,
            heading: 270.0,
            accuracy: 4.5,
            satellites: 9,
            battery: 87.5,
        }
    }

    #[test]
    fn one_point_is_an_object_with_every_field() {
        let mut out = Vec::new();
        encode_payload(&[p(1_700_000_000_123)], &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o["time"], 1_700_000_000_123i64);
        assert_eq!(o["lat"], 48.8566);
        assert_eq!(o["lon"], 2.3522);
        assert_eq!(o["alt"], 35.5);
        assert_eq!(o["speed"], 12.25);
        assert_eq!(o["heading"], 270.0);
        assert_eq!(o["accuracy"], 4.5);
        assert_eq!(o["satellites"], 9);
        assert_eq!(o["battery"], 87.5);
        assert_eq!(o.len(), 9);
    }

    #[test]
    fn several_points_are_an_array_in_order() {
        let mut out = b"keep".to_vec();
        encode_payload(&[p(1), p(2), p(3)], &mut out);
        assert_eq!(&out[..4], b"keep");
        let v: serde_json::Value = serde_json::from_slice(&out[4..]).unwrap();
        let times: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["time"].as_i64().unwrap())
            .collect();
        assert_eq!(times, vec![1, 2, 3]);
    }
}
