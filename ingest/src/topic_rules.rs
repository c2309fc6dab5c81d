//! The topic rules of the MQTT ACL as pure functions of an account id and a topic: which topics
//! a device may publish its positions on and subscribe to, which commands a service may send
//! and which position streams it may read. `broker::acl` applies them by account kind; they
//! live outside the broker so that they build, and are fuzzed, without it.
//!
//! Every rule first requires a valid account id ([`is_valid_account_id`]), so an empty or
//! wildcard account never matches anything.

use crate::position::{is_valid_device_id, is_valid_owntracks_id};

/// True when `id` can name an account: a device id (`[A-Za-z0-9._:-]`, 1 to 64 characters) or
/// an OwnTracks `user/device` id.
pub fn is_valid_account_id(id: &str) -> bool {
    is_valid_device_id(id) || is_valid_owntracks_id(id)
}

/// A device `id` may publish on `topic`: only its own position topics, `devices/{id}/positions`,
/// `owntracks/{id}[/...]` (an OwnTracks `user/device` id, or a `user` id followed by a device
/// segment) and `{id}/data` (Teltonika). Never a wildcard.
pub fn device_may_publish(id: &str, topic: &str) -> bool {
    if !is_valid_account_id(id) || topic.contains(['+', '#']) {
        return false;
    }
    if let Some(dev) = topic
        .strip_prefix("devices/")
        .and_then(|t| t.strip_suffix("/positions"))
    {
        return dev == id;
    }
    if let Some(rest) = topic.strip_prefix("owntracks/") {
        // `owntracks/{user}/{device}[/sub]`: the identity is `user/device` or just `user`.
        return match rest.strip_prefix(id) {
            Some("") => is_valid_owntracks_id(id),
            Some(after) => after.starts_with('/') && (is_valid_owntracks_id(id) || after.len() > 1),
            None => false,
        };
    }
    if let Some(imei) = topic.strip_suffix("/data") {
        return imei == id && is_valid_device_id(id);
    }
    false
}

/// A service `account` may publish on `topic`: only a command to one device,
/// `devices/{id}/commands` or `owntracks/{user}/{device}/cmd`. Never a position.
pub fn service_may_publish(account: &str, topic: &str) -> bool {
    is_valid_account_id(account) && is_command_topic(topic)
}

fn is_command_topic(topic: &str) -> bool {
    if let Some(dev) = topic
        .strip_prefix("devices/")
        .and_then(|t| t.strip_suffix("/commands"))
    {
        return is_valid_device_id(dev);
    }
    if let Some(id) = topic
        .strip_prefix("owntracks/")
        .and_then(|t| t.strip_suffix("/cmd"))
    {
        return is_valid_owntracks_id(id);
    }
    false
}

/// A device `id` may subscribe to `filter` (without its `$share/group/` prefix; `shared` tells
/// whether it had one): only its own command topic, `devices/{id}/commands` or, for an
/// OwnTracks id, `owntracks/{id}/cmd`. No wildcard, no shared subscription.
pub fn device_may_subscribe(id: &str, filter: &str, shared: bool) -> bool {
    is_valid_account_id(id)
        && !shared
        && (filter
            .strip_prefix("devices/")
            .and_then(|t| t.strip_suffix("/commands"))
            == Some(id)
            || (is_valid_owntracks_id(id)
                && filter
                    .strip_prefix("owntracks/")
                    .and_then(|t| t.strip_suffix("/cmd"))
                    == Some(id)))
}

/// A service `account` may subscribe to `filter`, shared or not: the position streams
/// `devices/+/positions`, `owntracks/#`, `owntracks/+/+`, `+/data`, or one device's
/// `devices/{id}/positions`.
pub fn service_may_subscribe(account: &str, filter: &str) -> bool {
    is_valid_account_id(account)
        && (matches!(
            filter,
            "devices/+/positions" | "owntracks/#" | "owntracks/+/+" | "+/data"
        ) || filter
            .strip_prefix("devices/")
            .and_then(|t| t.strip_suffix("/positions"))
            .is_some_and(is_valid_device_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_device_or_owntracks_ids() {
        for ok in ["dev-1", "351756051523999", "alice/phone", "a.b:c_d"] {
            assert!(is_valid_account_id(ok), "{ok}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "+",
            "#",
            "a/b/c",
            "/a",
            "a/",
            "dév",
            "a b",
            long.as_str(),
        ] {
            assert!(!is_valid_account_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_invalid_account_matches_nothing() {
        for (id, topic) in [
            ("", "devices//positions"),
            ("", "/data"),
            ("+", "devices/+/positions"),
            ("#", "owntracks/#"),
            ("a/b/c", "owntracks/a/b/c"),
        ] {
            assert!(!device_may_publish(id, topic), "{id:?} {topic:?}");
            assert!(!device_may_subscribe(id, topic, false), "{id:?} {topic:?}");
        }
        assert!(!service_may_publish("", "devices/dev-1/commands"));
        assert!(!service_may_subscribe("", "devices/+/positions"));
        assert!(!device_may_subscribe("", "devices//commands", false));
    }

    #[test]
    fn a_device_publishes_only_its_own_position_topics() {
        assert!(device_may_publish("dev-1", "devices/dev-1/positions"));
        assert!(device_may_publish(
            "351756051523999",
            "351756051523999/data"
        ));
        assert!(device_may_publish("alice/phone", "owntracks/alice/phone"));
        assert!(device_may_publish("alice", "owntracks/alice/phone"));
        for topic in [
            "devices/dev-2/positions",
            "devices/dev-1/commands",
            "devices/dev-1/positions/x",
            "devices/+/positions",
            "devices/#",
            "owntracks/alice",
            "owntracks/alice/",
            "owntracks/alicex/phone",
            "dev-2/data",
            "",
        ] {
            assert!(!device_may_publish("dev-1", topic), "{topic:?}");
            assert!(!device_may_publish("alice", topic), "{topic:?}");
        }
    }

    #[test]
    fn a_service_publishes_commands_and_reads_streams() {
        assert!(service_may_publish("backend", "devices/dev-1/commands"));
        assert!(service_may_publish("backend", "owntracks/alice/phone/cmd"));
        for topic in [
            "devices/dev-1/positions",
            "devices/+/commands",
            "devices/a/b/commands",
            "owntracks/alice/cmd",
            "owntracks/alice/phone",
        ] {
            assert!(!service_may_publish("backend", topic), "{topic:?}");
        }
        assert!(service_may_subscribe("backend", "devices/+/positions"));
        assert!(service_may_subscribe("backend", "devices/dev-1/positions"));
        for filter in ["#", "devices/#", "devices/+/commands", "$SYS/#", "+/+/+"] {
            assert!(!service_may_subscribe("backend", filter), "{filter:?}");
        }
    }

    #[test]
    fn a_device_subscribes_only_to_its_own_commands_unshared() {
        assert!(device_may_subscribe(
            "dev-1",
            "devices/dev-1/commands",
            false
        ));
        assert!(!device_may_subscribe(
            "dev-1",
            "devices/dev-1/commands",
            true
        ));
        assert!(device_may_subscribe(
            "alice/phone",
            "owntracks/alice/phone/cmd",
            false
        ));
        assert!(!device_may_subscribe("alice", "owntracks/alice/cmd", false));
        for filter in ["devices/dev-2/commands", "devices/+/commands", "#"] {
            assert!(!device_may_subscribe("dev-1", filter, false), "{filter:?}");
        }
    }
}
