//! Wires device identity into the broker: the authentication hook, the ACL (before the
//! durable append), the limits and the revocation loop, from the `ingest run` options.

use std::fmt;
use std::sync::Arc;

use rmqtt::context::ServerContext;
use rmqtt::hook::{Register, Type};
use tokio::task::JoinHandle;

use super::acl::AclHook;
use super::limits::{LimitOptions, Limits};
use super::tls::TlsOptions;
use crate::auth::{
    revoke_loop, AuthOptions, AuthenticateHook, Authenticator, Registry, RevokeOptions,
};
use crate::config::RunArgs;

/// Priority of the ACL on `MessagePublishCheckAcl`: above the durable append (0), so a refused
/// publish never reaches the WAL.
pub const ACL_PRIORITY: u32 = 100;

/// Security settings of the broker.
#[derive(Clone, Default)]
pub struct SecurityOptions {
    /// The account registry; `None` refuses every login that has credentials.
    pub registry: Option<Arc<Registry>>,
    pub auth: AuthOptions,
    pub limits: LimitOptions,
    pub revoke: RevokeOptions,
    /// Certificate and key for the TLS listeners.
    pub tls: Option<TlsOptions>,
}

impl fmt::Debug for SecurityOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityOptions")
            .field("registry", &self.registry.is_some())
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("revoke", &self.revoke)
            .field("tls", &self.tls)
            .finish()
    }
}

impl SecurityOptions {
    /// From `ingest run` arguments: a small pool of its own for the registry (logins must not
    /// wait behind the writer's batches).
    pub fn from_args(args: &RunArgs) -> anyhow::Result<SecurityOptions> {
        let pool = crate::db::pool(&args.db.database_url, args.db.database_ca.as_deref(), 2)?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsOptions {
                cert: cert.clone(),
                key: key.clone(),
                reload_interval: args.tls_reload_interval,
            }),
            (None, None) => None,
            _ => anyhow::bail!(
                "--tls-cert and --tls-key go together: give both PEM files, or neither"
            ),
        };
        if tls.is_none() && (args.mqtts_listen.addr().is_some() || args.wss_listen.addr().is_some())
        {
            anyhow::bail!(
                "--mqtts-listen and --wss-listen need --tls-cert and --tls-key (PEM files)"
            );
        }
        Ok(SecurityOptions {
            registry: Some(Arc::new(Registry::new(pool))),
            auth: AuthOptions {
                cache_ttl: args.auth_cache_ttl,
                verify_wait: args.auth_verify_wait,
                max_parallel_verifications: args
                    .auth_verify_slots
                    .map(usize::from)
                    .unwrap_or_else(crate::auth::default_parallel_verifications),
                ..AuthOptions::default()
            },
            limits: LimitOptions {
                max_connections: args.max_connections,
                connection_rate: args.max_connection_rate,
                device_message_rate: args.device_message_rate,
                device_message_burst: args.device_message_burst,
            },
            revoke: RevokeOptions {
                interval: args.auth_cache_ttl,
                ..RevokeOptions::default()
            },
            tls,
        })
    }
}

/// What `install` started.
pub(super) struct Installed {
    revoke: Option<JoinHandle<()>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(t) = self.revoke.take() {
            t.abort();
        }
    }
}

/// Registers the authentication and ACL hooks (call before `register.start()`) and starts the
/// revocation loop.
pub(super) async fn install(
    scx: &ServerContext,
    register: &dyn Register,
    opts: &SecurityOptions,
    allow_anonymous: bool,
    refusals: Arc<super::gate::refusal::Refusals>,
) -> Installed {
    let limits = Arc::new(Limits::new(&opts.limits));
    let Some(registry) = opts.registry.clone() else {
        tracing::warn!("no account registry: every login with credentials is refused");
        return Installed { revoke: None };
    };
    let authenticator = Arc::new(Authenticator::new(registry, &opts.auth));
    register
        .add(
            Type::ClientAuthenticate,
            Box::new(AuthenticateHook {
                authenticator: authenticator.clone(),
                limits: limits.clone(),
                scx: scx.clone(),
                refusals,
            }),
        )
        .await;
    let acl = || AclHook {
        authenticator: authenticator.clone(),
        limits: limits.clone(),
        allow_anonymous,
    };
    register
        .add_priority(Type::ClientSubscribeCheckAcl, ACL_PRIORITY, Box::new(acl()))
        .await;
    register
        .add_priority(Type::MessagePublishCheckAcl, ACL_PRIORITY, Box::new(acl()))
        .await;
    let revoke = tokio::spawn(revoke_loop(
        scx.clone(),
        authenticator.clone(),
        limits,
        opts.revoke.clone(),
    ));
    Installed {
        revoke: Some(revoke),
    }
}
