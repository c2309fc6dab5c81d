//! The durable publish path: decode + validate the message, append it to the WAL, and only
//! when the record is on disk let the broker route it and send PUBACK.
//!
//! rmqtt awaits its `MessagePublishCheckAcl` hook chain after `MessagePublish` and before it
//! routes the message and acknowledges it; this handler runs last in that chain (lowest
//! priority, after the ACL check), so an allowed publish is acknowledged only once durable.
//! A publish hook cannot refuse a message in rmqtt, an ACL hook can: that is why the append
//! lives here.
//!
//! When the WAL cannot take the record (backlog budget reached, disk full, I/O error):
//! MQTT 5 clients get PUBACK with reason 0x97 (quota exceeded) or 0x80 (unspecified error) and
//! keep the point; MQTT 3.1.1 has no negative PUBACK, so the connection is closed without
//! PUBACK and the client resends after reconnecting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use rmqtt::codec::v5::PublishAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{PublishAclResult, PublishResult};
use tracing::{error, warn};

use crate::health::Health;
use crate::log_throttle::Throttle;
use crate::metrics as m;
use crate::position::{self, Decoded, ValidationConfig};
use crate::record;
use crate::wal::{Wal, WalError};

/// At most one line per interval about appends refused for the budget, and about failed ones.
static BUDGET_LOG: Throttle = Throttle::new(Duration::from_secs(10));
static APPEND_LOG: Throttle = Throttle::new(Duration::from_secs(10));

/// The `MessagePublishCheckAcl` handler that makes acknowledgements durable.
pub struct DurableAppend {
    pub wal: Wal,
    pub validation: Arc<ValidationConfig>,
    pub health: Arc<Health>,
    /// When true the topic's device id is trusted (anonymous demo mode); otherwise the
    /// authenticated username is the device id.
    pub trust_topic_identity: bool,
}

#[async_trait]
impl Handler for DurableAppend {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::MessagePublishCheckAcl(session, publish) = param else {
            return (true, acc);
        };
        let started = Instant::now();
        let received_at = Utc::now();
        let identity = if self.trust_topic_identity {
            None
        } else {
            session.id.username.as_ref().map(|u| u.as_ref())
        };
        let decoded = position::decode(
            &publish.topic,
            &publish.payload,
            identity,
            received_at,
            &self.validation,
        );
        let (positions, rejects) = match decoded {
            Decoded::Ignored { reason } => {
                metrics::counter!(m::MESSAGES, "outcome" => "ignored").increment(1);
                tracing::debug!(topic = %publish.topic, reason, "message carries no position");
                return (true, acc);
            }
            Decoded::Accepted { positions, rejects } => (positions, rejects),
        };
        let bytes = record::encode(received_at, &positions, &rejects);
        match self.wal.append(bytes).await {
            Ok(_) => {
                self.health.set_wal_writable(true);
                self.health.set_wal_over_budget(false);
                metrics::histogram!(m::ACK_LATENCY).record(started.elapsed().as_secs_f64());
                let outcome = if positions.is_empty() {
                    "rejected"
                } else {
                    "stored"
                };
                metrics::counter!(m::MESSAGES, "outcome" => outcome).increment(1);
                metrics::counter!(m::POSITIONS, "outcome" => "accepted")
                    .increment(positions.len() as u64);
                if !rejects.is_empty() {
                    metrics::counter!(m::POSITIONS, "outcome" => "rejected")
                        .increment(rejects.len() as u64);
                    for r in &rejects {
                        metrics::counter!(m::REJECTS, "reason" => r.reason.as_str()).increment(1);
                    }
                }
                (true, acc)
            }
            Err(e) => {
                let v5 = matches!(session.protocol().await, Ok(5));
                let (reason, outcome) = match &e {
                    WalError::BudgetExceeded { .. } => {
                        self.health.set_wal_over_budget(true);
                        (PublishAckReason::QuotaExceeded, "refused_budget")
                    }
                    _ => {
                        self.health.set_wal_writable(false);
                        (PublishAckReason::UnspecifiedError, "refused_io")
                    }
                };
                // One line per interval whatever the number of devices refused; the exact
                // count is ingest_messages_total{outcome}.
                if matches!(e, WalError::BudgetExceeded { .. }) {
                    if let Some(n) = BUDGET_LOG.hit() {
                        warn!(client = %session.id.client_id, refused = n, "WAL budget reached: not acknowledging (devices keep their data)");
                    }
                } else if let Some(n) = APPEND_LOG.hit() {
                    error!(client = %session.id.client_id, error = %e, refused = n, "WAL append failed: not acknowledging");
                }
                metrics::counter!(m::MESSAGES, "outcome" => outcome).increment(1);
                // MQTT 3.1.1 cannot carry a negative PUBACK: close the connection instead.
                let result =
                    PublishResult::reason_code(reason, Some("not stored; retry later".into()), !v5);
                (
                    false,
                    Some(HookResult::PublishAclResult(PublishAclResult(result))),
                )
            }
        }
    }
}
