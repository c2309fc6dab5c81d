//! The broker's `ClientAuthenticate` hook: username = account id, password = secret. Applies
//! the login limits first (no database work for a refused login), then the authenticator.
//!
//! What the client is told:
//! - wrong or unknown credentials: "bad user name or password" (3.1.1: 4, MQTT 5: 0x86);
//! - a disabled account or no credentials: "not authorized" (5, 0x87);
//! - refused for load, i.e. retry later: "server unavailable" (3) in 3.1.1; in MQTT 5 "server
//!   busy" (0x89) for the connection limit or no verification slot in time, "connection rate
//!   exceeded" (0x9F) for the rate limit, "server unavailable" (0x88) when the registry cannot
//!   be reached. rmqtt 0.24 lets a hook say only "bad credentials" or "not authorized", so the
//!   hook answers "not authorized" and notes the load reason for the gate, which replaces the
//!   code in the CONNACK it relays (`broker::gate::refusal`).
//!
//! Refusals are counted by outcome (`ingest_mqtt_auth_total`) and summed up in one log line
//! per 10 s, never one per login; bad credentials get at most one line a second naming the
//! client's address. Never marks a session superuser: that would skip the ACL
//! and the durable publish hook.
//!
//! The wait for an argon2 verification slot (chosen secrets only) is bounded by
//! `AuthOptions::verify_wait`, by default half the handshake timeout of the listener the
//! client came through: a device is told "busy" while it is still waiting for its CONNACK.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ListenerId};
use tracing::{debug, info};

use super::authenticator::{Authenticator, Outcome};
use crate::broker::gate::refusal::{LoadRefusal, Refusals};
use crate::broker::limits::{Limits, Refusal};
use crate::log_throttle::Throttle;
use crate::metrics as m;

/// The authentication handler.
pub struct AuthenticateHook {
    pub authenticator: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    pub scx: ServerContext,
    /// Where load refusals are noted for the gate.
    pub refusals: Arc<Refusals>,
}

/// At most one summary line per interval about refused logins.
static REFUSED_LOG: Throttle = Throttle::new(Duration::from_secs(10));
/// At most one line a second naming a client refused for bad credentials.
static BAD_CREDENTIALS_LOG: Throttle = Throttle::new(Duration::from_secs(1));

/// Handshake timeout assumed when the listener's configuration is not found (the `ingest run`
/// default).
const FALLBACK_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Half the handshake timeout of listener `lid`: the client gets its answer while it still
/// waits for a CONNACK, with time left for the registry query and the verification itself.
fn default_verify_wait(scx: &ServerContext, lid: ListenerId) -> Duration {
    scx.listen_cfgs
        .get(&lid)
        .map(|cfg| cfg.handshake_timeout)
        .unwrap_or(FALLBACK_HANDSHAKE_TIMEOUT)
        / 2
}

fn refuse(result: AuthResult, outcome: &'static str) -> ReturnType {
    metrics::counter!(m::AUTH, "outcome" => outcome).increment(1);
    if let Some(n) = REFUSED_LOG.hit() {
        info!(
            refused = n,
            last_reason = outcome,
            "logins refused since the last line (by reason: ingest_mqtt_auth_total)"
        );
    }
    (false, Some(HookResult::AuthResult(result)))
}

impl AuthenticateHook {
    /// Refuses for load: "not authorized" to rmqtt, the real reason noted for the gate.
    fn refuse_for_load(
        &self,
        peer: Option<std::net::SocketAddr>,
        why: LoadRefusal,
        outcome: &'static str,
    ) -> ReturnType {
        if let Some(peer) = peer {
            self.refusals.note(peer, why);
        }
        refuse(AuthResult::NotAuthorized, outcome)
    }
}

#[async_trait]
impl Handler for AuthenticateHook {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::ClientAuthenticate(info) = param else {
            return (true, acc);
        };
        let remote = info.ipaddress();
        let Some(username) = info.username() else {
            debug!(
                ?remote,
                "login without credentials refused (anonymous access is off)"
            );
            return refuse(AuthResult::NotAuthorized, "no_credentials");
        };
        if let Err(r) = self
            .limits
            .check_login(self.scx.connections.count().max(0) as usize)
        {
            debug!(?remote, device = %super::log_safe(username), limit = r.as_str(), "login refused by a limit");
            let why = match r {
                Refusal::ConnectionRate => LoadRefusal::RateExceeded,
                Refusal::TooManyConnections | Refusal::MessageRate => LoadRefusal::Busy,
            };
            return self.refuse_for_load(remote, why, r.as_str());
        }
        let Some(password) = info.password() else {
            return refuse(AuthResult::BadUsernameOrPassword, "bad_credentials");
        };
        let wait = self
            .authenticator
            .verify_wait()
            .unwrap_or_else(|| default_verify_wait(&self.scx, info.id().lid));
        let outcome = self
            .authenticator
            .authenticate(username, password, wait)
            .await;
        match outcome {
            Outcome::Allowed(kind) => {
                metrics::counter!(m::AUTH, "outcome" => "allowed").increment(1);
                debug!(device = %username, %kind, "login");
                (
                    false,
                    Some(HookResult::AuthResult(AuthResult::Allow(false, None))),
                )
            }
            Outcome::BadCredentials => {
                // Who tried matters (a guessing client, a misconfigured tracker): one line a
                // second at most, with the latest address and how many since the last line.
                if let Some(n) = BAD_CREDENTIALS_LOG.hit() {
                    info!(?remote, device = %super::log_safe(username), refused = n, "login refused: bad credentials");
                }
                refuse(AuthResult::BadUsernameOrPassword, outcome.as_str())
            }
            Outcome::Busy => {
                debug!(?remote, device = %username, ?wait, "login refused: no verification slot in time (busy)");
                self.refuse_for_load(remote, LoadRefusal::Busy, outcome.as_str())
            }
            Outcome::Unavailable => {
                debug!(?remote, device = %username, "login refused: registry unreachable");
                self.refuse_for_load(remote, LoadRefusal::Unavailable, outcome.as_str())
            }
            Outcome::Disabled => {
                debug!(?remote, device = %username, "login refused: account disabled");
                refuse(AuthResult::NotAuthorized, outcome.as_str())
            }
        }
    }
}
