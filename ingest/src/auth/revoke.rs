//! The revocation loop: every few seconds, asks the registry (one query for all connected
//! accounts) whether each connected account is still enabled and still has the secret it
//! logged in with, and closes the sessions of those that are not. Also records `last_seen_at`
//! of connected accounts about once a minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmqtt::context::ServerContext;
use rmqtt::types::Id;
use tracing::{info, warn};

use super::authenticator::Authenticator;
use crate::broker::limits::Limits;
use crate::metrics as m;

/// Settings of the revocation loop.
#[derive(Debug, Clone)]
pub struct RevokeOptions {
    /// How often connected sessions are checked against the registry.
    pub interval: Duration,
    /// How often `last_seen_at` is written for connected accounts.
    pub last_seen_interval: Duration,
}

impl Default for RevokeOptions {
    fn default() -> Self {
        RevokeOptions {
            interval: Duration::from_secs(5),
            last_seen_interval: Duration::from_secs(60),
        }
    }
}

/// Runs until the task is aborted.
pub async fn revoke_loop(
    scx: ServerContext,
    authenticator: Arc<Authenticator>,
    limits: Arc<Limits>,
    opts: RevokeOptions,
) {
    let mut tick = tokio::time::interval(opts.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_seen_written = Instant::now();
    loop {
        tick.tick().await;
        limits.forget_idle();
        let sessions = connected_sessions(&scx).await;
        if sessions.is_empty() {
            continue;
        }
        let ids: Vec<String> = sessions.keys().cloned().collect();
        let states = match authenticator.registry().states(&ids).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "revocation check skipped: registry unreachable");
                continue;
            }
        };
        for (account, session_ids) in &sessions {
            let Some(identity) = authenticator.identity(account) else {
                continue; // anonymous-mode session or not logged in through the registry
            };
            let reason = match states.get(account) {
                None => Some("removed"),
                Some((false, _)) => Some("disabled"),
                Some((true, hash)) if *hash != identity.secret_hash => Some("secret_rotated"),
                Some(_) => None,
            };
            let Some(reason) = reason else { continue };
            authenticator.forget(account);
            for id in session_ids {
                kick(&scx, id).await;
                metrics::counter!(m::KICKED, "reason" => reason).increment(1);
                info!(device = %account, client = %id.client_id, reason, "session closed");
            }
        }
        if last_seen_written.elapsed() >= opts.last_seen_interval {
            last_seen_written = Instant::now();
            if let Err(e) = authenticator.registry().touch(&ids).await {
                warn!(error = %e, "cannot record last_seen_at");
            }
        }
    }
}

/// Connected sessions that logged in with a username, grouped by username.
async fn connected_sessions(scx: &ServerContext) -> HashMap<String, Vec<Id>> {
    let mut out: HashMap<String, Vec<Id>> = HashMap::new();
    let shared = scx.extends.shared().await;
    for entry in shared.iter() {
        let id = entry.id();
        if let Some(user) = id.username.as_ref() {
            out.entry(user.to_string()).or_default().push(id.clone());
        }
    }
    out
}

async fn kick(scx: &ServerContext, id: &Id) {
    let entry = scx.extends.shared().await.entry(id.clone());
    match entry.try_lock().await {
        Ok(mut locked) => {
            if let Err(e) = locked.kick(true, true, true).await {
                warn!(client = %id.client_id, error = %e, "cannot close the session");
            }
        }
        Err(e) => warn!(client = %id.client_id, error = %e, "cannot lock the session to close it"),
    }
}
