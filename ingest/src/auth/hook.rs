//! The broker's `ClientAuthenticate` hook: username = account id, password = secret. Applies
//! the login limits first (no database work for a refused login), then the authenticator.
//! Wrong or unknown credentials get CONNACK "bad user name or password"; a disabled account,
//! a limit or an unreachable registry get "not authorized" (the only other refusal rmqtt lets
//! an authentication hook give). Never marks a session superuser: that would skip the ACL and
//! the durable publish hook.

use std::sync::Arc;

use async_trait::async_trait;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::AuthResult;
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
        let outcome = self.authenticator.authenticate(username, password).await;
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
            Outcome::Disabled | Outcome::Unavailable => {
                info!(?remote, device = %username, reason = outcome.as_str(), "login refused");
                refuse(AuthResult::NotAuthorized, outcome.as_str())
            }
        }
    }
}
