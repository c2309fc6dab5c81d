//! Checks a device's credentials: the bounded cache first, then the registry and argon2 (off
//! the async workers, a bounded number at a time so a reconnect storm cannot exhaust memory).
//! Also remembers, per authenticated account, its kind and the hash it logged in with: the
//! ACL reads the kind, the revocation loop compares the hash.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::warn;

use super::cache::AuthCache;
use super::error::AuthError;
use super::kind::Kind;
use super::registry::{is_valid_account_id, Registry};
use super::secret;

/// The result of one authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed(Kind),
    /// Unknown account or wrong secret (the client is not told which).
    BadCredentials,
    /// The account exists but is disabled.
    Disabled,
    /// The registry cannot be reached and the secret is not in the cache.
    Unavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed(_) => "allowed",
            Outcome::BadCredentials => "bad_credentials",
            Outcome::Disabled => "disabled",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Settings of the authenticator.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Cached verifications kept (LRU).
    pub cache_capacity: usize,
    /// How long a cached verification is trusted without asking the database again.
    pub cache_ttl: Duration,
    /// argon2 verifications running at once (each takes ~19 MiB).
    pub max_parallel_verifications: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(5),
            max_parallel_verifications: 4,
        }
    }
}

/// An authenticated account as the broker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: Kind,
    /// The PHC string the session's secret matched.
    pub secret_hash: String,
}

/// Credentials checker shared by the broker hooks.
pub struct Authenticator {
    registry: Arc<Registry>,
    cache: AuthCache,
    verify_slots: Semaphore,
    identities: RwLock<HashMap<String, Identity>>,
}

impl Authenticator {
    pub fn new(registry: Arc<Registry>, opts: &AuthOptions) -> Authenticator {
        Authenticator {
            registry,
            cache: AuthCache::new(opts.cache_capacity, opts.cache_ttl),
            verify_slots: Semaphore::new(opts.max_parallel_verifications.max(1)),
            identities: RwLock::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The kind and login hash of an authenticated account.
    pub fn identity(&self, id: &str) -> Option<Identity> {
        self.identities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Forgets an account everywhere (after it was disabled or its secret rotated).
    pub fn forget(&self, id: &str) {
        self.cache.forget_account(id);
        self.identities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn remember(&self, id: &str, kind: Kind, secret_hash: &str) {
        self.identities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.to_owned(),
                Identity {
                    kind,
                    secret_hash: secret_hash.to_owned(),
                },
            );
    }

    /// Checks `secret` for account `id`.
    pub async fn authenticate(&self, id: &str, secret: &[u8]) -> Outcome {
        if !is_valid_account_id(id) || secret.is_empty() || secret.len() > secret::MAX_SECRET_LEN {
            return Outcome::BadCredentials;
        }
        let Ok(secret) = std::str::from_utf8(secret) else {
            return Outcome::BadCredentials;
        };
        let fp = secret::fingerprint(secret.as_bytes());
        let cached = self.cache.get(id, &fp);
        if let Some(hit) = &cached {
            if hit.fresh {
                self.remember(id, hit.kind, &hit.secret_hash);
                return Outcome::Allowed(hit.kind);
            }
        }
        let stored = match self.registry.credentials(id).await {
            Ok(s) => s,
            Err(e) => {
                // The database is down: keep devices already verified connected (availability
                // over instant revocation), refuse the others until it is back.
                return match cached {
                    Some(hit) => {
                        warn!(device = id, error = %e, "registry unreachable: accepting a previously verified secret");
                        self.remember(id, hit.kind, &hit.secret_hash);
                        Outcome::Allowed(hit.kind)
                    }
                    None => {
                        warn!(device = id, error = %e, "registry unreachable: refusing an unverified login");
                        Outcome::Unavailable
                    }
                };
            }
        };
        let Some(stored) = stored else {
            self.cache.remove(id, &fp);
            return Outcome::BadCredentials;
        };
        if !stored.enabled {
            self.forget(id);
            return Outcome::Disabled;
        }
        if let Some(hit) = cached {
            if hit.secret_hash == stored.secret_hash {
                self.cache.put(id, &fp, stored.kind, &stored.secret_hash);
                self.remember(id, stored.kind, &stored.secret_hash);
                return Outcome::Allowed(stored.kind);
            }
            self.cache.remove(id, &fp);
        }
        match self.verify(secret, &stored.secret_hash).await {
            Ok(true) => {
                self.cache.put(id, &fp, stored.kind, &stored.secret_hash);
                self.remember(id, stored.kind, &stored.secret_hash);
                Outcome::Allowed(stored.kind)
            }
            Ok(false) => Outcome::BadCredentials,
            Err(e) => {
                warn!(device = id, error = %e, "cannot verify the secret");
                Outcome::BadCredentials
            }
        }
    }

    async fn verify(&self, secret: &str, phc: &str) -> Result<bool, AuthError> {
        let _slot = self
            .verify_slots
            .acquire()
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        let secret = secret.to_owned();
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || secret::verify(&secret, &phc)).await?
    }
}
