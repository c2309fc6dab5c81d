//! `decode`: one MQTT publish (topic, payload, identity, reception time) in, the positions to
//! store and the rejects to record out.
//!
//! Order of checks: topic, device identity, payload size, UTF-8, JSON shape, then each point on
//! its own: an invalid point of an array rejects only that point (its reject carries the
//! element's JSON); the valid ones are kept.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::batch::{split, Elements};
use super::config::ValidationConfig;
use super::model::{Decoded, Reject};
use super::owntracks;
use super::point::{Fail, RawPoint};
use super::project;
use super::reason::RejectReason;
use super::teltonika;
use super::topic::{resolve_device, route, Format, Route};
use super::validate::validate;

/// One element's outcome.
enum Item {
    Point(RawPoint),
    Ignored(&'static str),
}

fn parse_element(format: Format, text: &str, cfg: &ValidationConfig) -> Result<Item, Fail> {
    let max = cfg.max_attributes_bytes;
    match format {
        Format::Project => project::parse(text, max).map(Item::Point),
        Format::Teltonika => teltonika::parse(text, max).map(Item::Point),
        Format::OwnTracks => owntracks::parse(text, max).map(|m| match m {
            owntracks::Message::Location(p) => Item::Point(p),
            owntracks::Message::Other(reason) => Item::Ignored(reason),
        }),
    }
}

/// Decodes and validates one MQTT message.
///
/// Never fails and never panics: every input ends as `Accepted` (positions and/or rejects) or
/// `Ignored`. A message rejected as a whole gives `Accepted` with no position and one reject
/// holding the raw payload (cut to `max_payload_bytes`).
pub fn decode(
    topic: &str,
    payload: &[u8],
    identity: Option<&str>,
    received_at: DateTime<Utc>,
    cfg: &ValidationConfig,
) -> Decoded {
    let whole = |device_id: Option<String>, fail: Fail| {
        let kept = &payload[..payload.len().min(cfg.max_payload_bytes)];
        Decoded::Accepted {
            positions: Vec::new(),
            rejects: vec![Reject {
                device_id,
                topic: topic.to_owned(),
                reason: fail.reason,
                detail: fail.detail,
                payload: Bytes::copy_from_slice(kept),
            }],
        }
    };

    let (format, topic_device, ignore) = match route(topic, cfg) {
        Ok(Route::Decode { format, device }) => (format, device, None),
        Ok(Route::Ignore {
            format,
            device,
            reason,
        }) => (format, device, Some(reason)),
        Err(e) => return whole(e.device_id, Fail::new(e.reason, e.detail)),
    };
    let device_id = match resolve_device(format, topic_device, identity) {
        Ok(id) => id,
        Err(e) => return whole(e.device_id, Fail::new(e.reason, e.detail)),
    };
    if let Some(reason) = ignore {
        return Decoded::Ignored { reason };
    }
    let fail_whole = |fail: Fail| whole(Some(device_id.clone()), fail);

    if payload.is_empty() {
        return fail_whole(Fail::new(RejectReason::EmptyPayload, "payload is empty"));
    }
    if payload.len() > cfg.max_payload_bytes {
        return fail_whole(Fail::new(
            RejectReason::TooLarge,
            format!(
                "payload of {} bytes exceeds the limit of {} bytes (first {} bytes kept)",
                payload.len(),
                cfg.max_payload_bytes,
                cfg.max_payload_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(payload) {
        Ok(text) => text,
        Err(e) => {
            return fail_whole(Fail::new(
                RejectReason::InvalidUtf8,
                format!("payload is not UTF-8: {e}"),
            ))
        }
    };
    let elements = match split(text, cfg.max_points) {
        Ok(elements) => elements,
        Err(fail) => return fail_whole(fail),
    };

    let mut positions = Vec::with_capacity(match &elements {
        Elements::One(_) => 1,
        Elements::Many(list) => list.len(),
    });
    let mut rejects = Vec::new();
    let mut ignored = None;
    let mut handle = |element: &str| {
        let outcome = parse_element(format, element, cfg).and_then(|item| match item {
            Item::Point(p) => validate(p, &device_id, received_at, cfg).map(Some),
            Item::Ignored(reason) => {
                ignored.get_or_insert(reason);
                Ok(None)
            }
        });
        match outcome {
            Ok(Some(position)) => positions.push(position),
            Ok(None) => {}
            Err(fail) => rejects.push(Reject {
                device_id: Some(device_id.clone()),
                topic: topic.to_owned(),
                reason: fail.reason,
                detail: fail.detail,
                payload: Bytes::copy_from_slice(element.as_bytes()),
            }),
        }
    };
    match &elements {
        Elements::One(text) => handle(text),
        Elements::Many(list) => {
            for element in list {
                handle(element.get());
            }
        }
    }

    if positions.is_empty() && rejects.is_empty() {
        return Decoded::Ignored {
            reason: ignored.unwrap_or("empty_array"),
        };
    }
    Decoded::Accepted { positions, rejects }
}
