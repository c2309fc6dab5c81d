//! Who may publish and subscribe where (the topic ACL), and the per-account message rate.
//!
//! - A device publishes only its own position topics: `devices/{id}/positions`, the OwnTracks
//!   topics `owntracks/{id}[/...]` (id `user/device`, or `user`), and `{id}/data` (Teltonika).
//!   It subscribes only to its own command topic `devices/{id}/commands` (and OwnTracks'
//!   `owntracks/{id}/cmd`), with no wildcard and no shared subscription.
//! - A service subscribes to the position streams (`devices/+/positions`, one device's
//!   positions, `owntracks/#`, `+/data`), shared (`$share/{group}/...`) or not, and publishes
//!   only commands (`devices/{id}/commands`, `owntracks/{user}/{device}/cmd`). It never
//!   publishes positions, so it cannot speak for a device.
//!
//! Refusals: SUBACK "not authorized" (0x87; 0x80 on MQTT 3.1.1); PUBACK "not authorized"
//! (0x87) on MQTT 5. MQTT 3.1.1 has no negative PUBACK, so there the connection is closed
//! rather than acknowledging a message that was dropped. Over its message rate a device gets
//! PUBACK "quota exceeded" (0x97) on MQTT 5, a closed connection on 3.1.1 (it resends later).
//! Every refusal is counted in `ingest_mqtt_acl_denied_total{action,kind}`.
//!
//! The handler runs before the durable append (higher priority on `MessagePublishCheckAcl`)
//! and stops the chain on refusal. An allowed command publish also stops the chain: commands
//! are routed to the device but are not positions, so they do not go to the WAL.

use std::sync::Arc;

use async_trait::async_trait;
use rmqtt::codec::v5::{PublishAckReason, SubscribeAckReason};
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::session::Session;
use rmqtt::types::{PublishAclResult, PublishResult, SubscribeAclResult};
use tracing::info;

use super::limits::Limits;
use crate::auth::{log_safe, Authenticator, Kind};
use crate::metrics as m;
use crate::topic_rules;

/// What a publish is, as far as the ACL is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishVerdict {
    /// A position (or OwnTracks status) of the account itself: goes on to the durable append.
    OwnPosition,
    /// A command from a service to a device: routed, not stored.
    Command,
    Denied,
}

/// Decides a publish of `account` (of `kind`) on `topic` (rules in [`crate::topic_rules`]).
pub fn publish_verdict(kind: Kind, account: &str, topic: &str) -> PublishVerdict {
    match kind {
        Kind::Device if topic_rules::device_may_publish(account, topic) => {
            PublishVerdict::OwnPosition
        }
        Kind::Service if topic_rules::service_may_publish(account, topic) => {
            PublishVerdict::Command
        }
        _ => PublishVerdict::Denied,
    }
}

/// Decides a subscription of `account` (of `kind`) to `filter` (without its `$share/group/`
/// prefix; `shared` tells whether it had one).
pub fn may_subscribe(kind: Kind, account: &str, filter: &str, shared: bool) -> bool {
    match kind {
        Kind::Device => topic_rules::device_may_subscribe(account, filter, shared),
        Kind::Service => topic_rules::service_may_subscribe(account, filter),
    }
}

/// The ACL handler, registered on `ClientSubscribeCheckAcl` and `MessagePublishCheckAcl`.
pub struct AclHook {
    pub authenticator: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    /// Anonymous demo mode: sessions without a username may do anything.
    pub allow_anonymous: bool,
}

enum Who {
    Anonymous,
    Account(String, Kind),
    Unknown,
}

impl AclHook {
    fn who(&self, session: &Session) -> Who {
        match session.id.username.as_ref() {
            None if self.allow_anonymous => Who::Anonymous,
            None => Who::Unknown,
            Some(u) => match self.authenticator.identity(u) {
                Some(identity) => Who::Account(u.to_string(), identity.kind),
                None => Who::Unknown,
            },
        }
    }
}

fn denied(action: &'static str, kind: &'static str) {
    metrics::counter!(m::ACL_DENIED, "action" => action, "kind" => kind).increment(1);
}

async fn refuse_publish(
    session: &Session,
    reason: PublishAckReason,
    text: &'static str,
) -> ReturnType {
    let v5 = matches!(session.protocol().await, Ok(5));
    let result = PublishResult::reason_code(reason, Some(text.into()), !v5);
    (
        false,
        Some(HookResult::PublishAclResult(PublishAclResult(result))),
    )
}

#[async_trait]
impl Handler for AclHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let filter: &str = &sub.topic_filter;
                let shared = sub.opts.has_shared_group();
                let (allowed, kind) = match self.who(session) {
                    Who::Anonymous => return (true, acc),
                    Who::Account(account, kind) => {
                        (may_subscribe(kind, &account, filter, shared), kind.as_str())
                    }
                    Who::Unknown => (false, "unknown"),
                };
                if allowed {
                    return (true, acc);
                }
                denied("subscribe", kind);
                info!(client = %session.id.client_id, filter = %log_safe(filter), shared, "subscription refused");
                let refused = SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized);
                (false, Some(HookResult::SubscribeAclResult(refused)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let topic: &str = &publish.topic;
                let (account, kind) = match self.who(session) {
                    Who::Anonymous => return (true, acc),
                    Who::Account(account, kind) => (account, kind),
                    Who::Unknown => {
                        denied("publish", "unknown");
                        return refuse_publish(
                            session,
                            PublishAckReason::NotAuthorized,
                            "not authorized",
                        )
                        .await;
                    }
                };
                let verdict = publish_verdict(kind, &account, topic);
                if verdict == PublishVerdict::Denied {
                    denied("publish", kind.as_str());
                    info!(device = %account, topic = %log_safe(topic), "publish refused");
                    return refuse_publish(
                        session,
                        PublishAckReason::NotAuthorized,
                        "not authorized for this topic",
                    )
                    .await;
                }
                if self.limits.check_message(&account).is_err() {
                    return refuse_publish(
                        session,
                        PublishAckReason::QuotaExceeded,
                        "message rate exceeded; retry later",
                    )
                    .await;
                }
                match verdict {
                    PublishVerdict::Command => (
                        false,
                        Some(HookResult::PublishAclResult(PublishAclResult::allow())),
                    ),
                    _ => (true, acc),
                }
            }
            _ => (true, acc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_publishes_only_its_own_positions() {
        let d = Kind::Device;
        assert_eq!(
            publish_verdict(d, "dev-1", "devices/dev-1/positions"),
            PublishVerdict::OwnPosition
        );
        assert_eq!(
            publish_verdict(d, "dev-1", "devices/dev-2/positions"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "dev-1", "devices/dev-1/commands"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "dev-1", "devices/dev-1/positions/x"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "dev-1", "devices/dev-10/positions"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "dev", "devices/dev-1/positions"),
            PublishVerdict::Denied
        );
        assert_eq!(publish_verdict(d, "dev-1", "other"), PublishVerdict::Denied);
        assert_eq!(publish_verdict(d, "dev-1", ""), PublishVerdict::Denied);
        assert_eq!(
            publish_verdict(d, "+", "devices/+/positions"),
            PublishVerdict::Denied
        );
        assert!(!may_subscribe(d, "#", "devices/#/commands", false));
        assert_eq!(
            publish_verdict(d, "351756051523999", "351756051523999/data"),
            PublishVerdict::OwnPosition
        );
        assert_eq!(
            publish_verdict(d, "351756051523999", "351756051523998/data"),
            PublishVerdict::Denied
        );
    }

    #[test]
    fn owntracks_identities_cover_their_topics_only() {
        let d = Kind::Device;
        assert_eq!(
            publish_verdict(d, "alice/phone", "owntracks/alice/phone"),
            PublishVerdict::OwnPosition
        );
        assert_eq!(
            publish_verdict(d, "alice/phone", "owntracks/alice/phone/event"),
            PublishVerdict::OwnPosition
        );
        assert_eq!(
            publish_verdict(d, "alice/phone", "owntracks/alice/phone2"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "alice/phone", "owntracks/alice/tablet"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "alice", "owntracks/alice/phone"),
            PublishVerdict::OwnPosition
        );
        assert_eq!(
            publish_verdict(d, "alice", "owntracks/alice"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "alice", "owntracks/alice/"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "alice", "owntracks/alicex/phone"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(d, "alice", "owntracks/bob/phone"),
            PublishVerdict::Denied
        );
    }

    #[test]
    fn a_service_sends_commands_but_never_positions() {
        let s = Kind::Service;
        assert_eq!(
            publish_verdict(s, "backend", "devices/dev-1/commands"),
            PublishVerdict::Command
        );
        assert_eq!(
            publish_verdict(s, "backend", "owntracks/alice/phone/cmd"),
            PublishVerdict::Command
        );
        assert_eq!(
            publish_verdict(s, "backend", "devices/dev-1/positions"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(s, "backend", "devices/backend/positions"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(s, "backend", "devices/a/b/commands"),
            PublishVerdict::Denied
        );
        assert_eq!(
            publish_verdict(s, "backend", "owntracks/alice/phone"),
            PublishVerdict::Denied
        );
    }

    #[test]
    fn subscriptions_follow_the_kind() {
        let (d, s) = (Kind::Device, Kind::Service);
        assert!(may_subscribe(d, "dev-1", "devices/dev-1/commands", false));
        assert!(
            !may_subscribe(d, "dev-1", "devices/dev-1/commands", true),
            "no shared subscriptions for devices"
        );
        assert!(!may_subscribe(d, "dev-1", "devices/dev-2/commands", false));
        assert!(!may_subscribe(d, "dev-1", "devices/+/commands", false));
        assert!(!may_subscribe(d, "dev-1", "#", false));
        assert!(!may_subscribe(d, "dev-1", "devices/#", false));
        assert!(!may_subscribe(d, "dev-1", "devices/dev-1/positions", false));
        assert!(may_subscribe(
            d,
            "alice/phone",
            "owntracks/alice/phone/cmd",
            false
        ));
        assert!(!may_subscribe(d, "alice", "owntracks/alice/cmd", false));
        for f in [
            "devices/+/positions",
            "owntracks/#",
            "owntracks/+/+",
            "+/data",
            "devices/dev-1/positions",
        ] {
            assert!(may_subscribe(s, "backend", f, false), "{f}");
            assert!(may_subscribe(s, "backend", f, true), "$share/g/{f}");
        }
        for f in [
            "#",
            "devices/#",
            "devices/+/commands",
            "$SYS/#",
            "devices/+/+",
            "+/+/+",
        ] {
            assert!(!may_subscribe(s, "backend", f, false), "{f}");
        }
    }
}
