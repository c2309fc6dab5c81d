//! The broker's `ClientAuthenticate` hook: username = account id, password = secret. Applies
//! the login limits first (no database work for a refused login), then the authenticator.
//! Wrong or unknown credentials get CONNACK "bad user name or password"; a disabled account,
//! a limit, an unreachable registry or a busy verifier get "not authorized": the only other
//! refusal rmqtt 0.24 lets an authentication hook give (its `ClientConnack` hook is not called
//! for refused handshakes, so "server unavailable" cannot be substituted); the metric's
//! outcome label says which. Never marks a session superuser: that would skip the ACL and the
//! durable publish hook.
//!
//! The wait for an argon2 verification slot is bounded by `AuthOptions::verify_wait`, by
//! default half the handshake timeout of the listener the client came through: a device is
//! told "busy" while it is still waiting for its CONNACK, and retries.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ListenerId};
use tracing::{debug, info};

use super::authenticator::{Authenticator, Outcome};
use crate::broker::limits::Limits;
use crate::metrics as m;

/// The authentication handler.
pub struct AuthenticateHook {
    pub authenticator: Arc<Authenticator>,
    pub limits: Arc<Limits>,
    pub scx: ServerContext,
}

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
    (false, Some(HookResult::AuthResult(result)))
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
            info!(?remote, device = %super::log_safe(username), limit = r.as_str(), "login refused by a limit");
            return refuse(AuthResult::NotAuthorized, r.as_str());
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
                info!(?remote, device = %super::log_safe(username), "login refused: bad credentials");
                refuse(AuthResult::BadUsernameOrPassword, outcome.as_str())
            }
            Outcome::Busy => {
                debug!(?remote, device = %username, ?wait, "login refused: no verification slot in time (busy)");
                refuse(AuthResult::NotAuthorized, outcome.as_str())
            }
            Outcome::Disabled | Outcome::Unavailable => {
                info!(?remote, device = %username, reason = outcome.as_str(), "login refused");
                refuse(AuthResult::NotAuthorized, outcome.as_str())
            }
        }
    }
}
