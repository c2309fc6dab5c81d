//! Topic routing and device identity: which payload format a topic carries, which device it
//! names, and whether that agrees with the identity the broker authenticated.

use super::config::ValidationConfig;
use super::reason::RejectReason;

/// Longest device id, in bytes (ids are ASCII).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// The payload formats, chosen by topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `devices/{device_id}/positions`
    Project,
    /// `owntracks/{user}/{device}`
    OwnTracks,
    /// `{imei}/data`
    Teltonika,
}

/// Where a topic leads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'t> {
    /// Decode the payload in `format`; `device` is the topic's device segment(s).
    Decode { format: Format, device: &'t str },
    /// A known topic that never carries positions (OwnTracks `.../event`, `.../info`...);
    /// `device` still has to match the identity.
    Ignore {
        format: Format,
        device: &'t str,
        reason: &'static str,
    },
}

/// A failure to route, with the device id when one is known.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RouteError {
    pub device_id: Option<String>,
    pub reason: RejectReason,
    pub detail: String,
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// True when `id` is a valid device id: 1 to 64 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_DEVICE_ID_LEN && id.bytes().all(is_id_byte)
}

/// True when `id` is a valid OwnTracks device id `{user}/{device}`: two non-empty segments of
/// `[A-Za-z0-9._:-]` joined by one `/`, 64 characters at most in all.
pub fn is_valid_owntracks_id(id: &str) -> bool {
    match id.split_once('/') {
        Some((user, device)) => {
            id.len() <= MAX_DEVICE_ID_LEN && is_valid_device_id(user) && is_valid_device_id(device)
        }
        None => false,
    }
}

/// Finds the format and device segment of `topic`.
pub(crate) fn route<'t>(topic: &'t str, cfg: &ValidationConfig) -> Result<Route<'t>, RouteError> {
    let unknown = || RouteError {
        device_id: None,
        reason: RejectReason::UnknownTopic,
        detail: format!(
            "topic {:?} matches none of devices/{{id}}/positions, owntracks/{{user}}/{{device}}{}",
            shorten(topic),
            if cfg.teltonika { ", {imei}/data" } else { "" }
        ),
    };
    let segments: Vec<&str> = topic.splitn(5, '/').collect();
    match segments.as_slice() {
        ["devices", device, "positions"] => {
            check_id(device, is_valid_device_id)?;
            Ok(Route::Decode {
                format: Format::Project,
                device,
            })
        }
        ["owntracks", user, device, rest @ ..] => {
            // `user/device` is a prefix of the topic: borrow it instead of allocating.
            let id_len = "owntracks/".len() + user.len() + 1 + device.len();
            let id = &topic["owntracks/".len()..id_len];
            check_id(id, is_valid_owntracks_id)?;
            if rest.is_empty() {
                Ok(Route::Decode {
                    format: Format::OwnTracks,
                    device: id,
                })
            } else {
                Ok(Route::Ignore {
                    format: Format::OwnTracks,
                    device: id,
                    reason: "owntracks_subtopic",
                })
            }
        }
        [imei, "data"] if cfg.teltonika => {
            check_id(imei, is_valid_device_id)?;
            Ok(Route::Decode {
                format: Format::Teltonika,
                device: imei,
            })
        }
        _ => Err(unknown()),
    }
}

fn check_id(id: &str, valid: fn(&str) -> bool) -> Result<(), RouteError> {
    if valid(id) {
        Ok(())
    } else {
        Err(RouteError {
            device_id: None,
            reason: RejectReason::BadDeviceId,
            detail: format!(
                "device id {:?} in the topic is not 1-{MAX_DEVICE_ID_LEN} characters of [A-Za-z0-9._:-]",
                shorten(id)
            ),
        })
    }
}

/// Decides the device id of a message: the authenticated identity when there is one (it must
/// name the same device as the topic), else the topic's device segment.
///
/// For OwnTracks the identity may be `{user}/{device}` or just `{user}` (OwnTracks puts the
/// MQTT username in the topic by default); the identity is then the device id.
pub(crate) fn resolve_device(
    format: Format,
    topic_device: &str,
    identity: Option<&str>,
) -> Result<String, RouteError> {
    let Some(identity) = identity else {
        return Ok(topic_device.to_owned());
    };
    if !(is_valid_device_id(identity) || is_valid_owntracks_id(identity)) {
        return Err(RouteError {
            device_id: None,
            reason: RejectReason::BadDeviceId,
            detail: format!(
                "authenticated identity {:?} is not a valid device id",
                shorten(identity)
            ),
        });
    }
    let matches = match format {
        Format::Project | Format::Teltonika => identity == topic_device,
        Format::OwnTracks => {
            identity == topic_device
                || topic_device
                    .split_once('/')
                    .is_some_and(|(user, _)| user == identity)
        }
    };
    if matches {
        Ok(identity.to_owned())
    } else {
        Err(RouteError {
            device_id: Some(identity.to_owned()),
            reason: RejectReason::TopicIdentityMismatch,
            detail: format!(
                "device {identity:?} published on the topic of device {:?}",
                shorten(topic_device)
            ),
        })
    }
}

/// Cuts untrusted text to a length fit for an error detail.
pub(crate) fn shorten(text: &str) -> &str {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
