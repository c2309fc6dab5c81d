//! Checks a device's credentials: the bounded cache first, then the registry and the stored
//! hash. Generated secrets have a fast hash (HMAC-SHA-256, microseconds, verified inline);
//! chosen ones an argon2id hash, verified off the async workers a bounded number at a time so
//! a reconnect storm cannot exhaust memory or the CPU (see `gate`): such a login that cannot
//! get a verification slot within its bound is answered "busy" at once. An argon2id hash of a
//! generated secret is replaced by the fast one at its next successful login.
//! Also remembers, per authenticated account, its kind and the hash it logged in with: the
//! ACL reads the kind, the revocation loop compares the hash.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::cache::AuthCache;
use super::error::AuthError;
use super::gate::{Slot, VerifyGate};
use super::kind::Kind;
use super::registry::{is_valid_account_id, Registry};
use super::secret::{self, Scheme};
use crate::metrics as m;

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
    /// No argon2 verification slot within the login's bound (a reconnect storm): try again.
    Busy,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed(_) => "allowed",
            Outcome::BadCredentials => "bad_credentials",
            Outcome::Disabled => "disabled",
            Outcome::Unavailable => "unavailable",
            Outcome::Busy => "busy",
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
    /// argon2 verifications running at once (each takes ~19 MiB and a core while it runs).
    pub max_parallel_verifications: usize,
    /// Longest a login may wait for a verification slot before it is refused as busy. `None`:
    /// half the handshake timeout of the listener the client came through (see the hook).
    pub verify_wait: Option<Duration>,
}

/// Verification slots by default: one per core, at most 8 (152 MiB of argon2 memory). More
/// slots than cores add no throughput (argon2 is CPU-bound), only latency and memory.
pub fn default_parallel_verifications() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(5),
            max_parallel_verifications: default_parallel_verifications(),
            verify_wait: None,
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
    gate: VerifyGate,
    verify_wait: Option<Duration>,
    identities: RwLock<HashMap<String, Identity>>,
}

impl Authenticator {
    pub fn new(registry: Arc<Registry>, opts: &AuthOptions) -> Authenticator {
        Authenticator {
            registry,
            cache: AuthCache::new(opts.cache_capacity, opts.cache_ttl),
            gate: VerifyGate::new(opts.max_parallel_verifications),
            verify_wait: opts.verify_wait,
            identities: RwLock::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The configured bound on the wait for a verification slot (`None`: the caller derives
    /// it from the handshake timeout).
    pub fn verify_wait(&self) -> Option<Duration> {
        self.verify_wait
    }

    /// Verifications at once.
    pub fn parallel_verifications(&self) -> usize {
        self.gate.parallel()
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

    /// Checks `secret` for account `id`; waits at most `wait` for a verification slot (the
    /// registry query comes on top, a few milliseconds).
    pub async fn authenticate(&self, id: &str, secret: &[u8], wait: Duration) -> Outcome {
        let started = Instant::now();
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
                        debug!(device = id, error = %e, "registry unreachable: refusing an unverified login");
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
        let verified = match secret::scheme(&stored.secret_hash) {
            // Microseconds: verified right here, no slot needed.
            Scheme::Fast => {
                metrics::counter!(m::AUTH_VERIFICATIONS, "scheme" => Scheme::Fast.as_str())
                    .increment(1);
                secret::verify(secret, &stored.secret_hash).map(Verified::from)
            }
            Scheme::Slow => {
                let wait = wait.saturating_sub(started.elapsed());
                let Ok(slot) = self.gate.acquire(wait).await else {
                    return Outcome::Busy;
                };
                self.verify_slow(slot, secret, &stored.secret_hash).await
            }
        };
        match verified {
            Ok(Verified::Yes) => {
                let hash = self.upgrade(id, secret, &stored.secret_hash).await;
                self.cache.put(id, &fp, stored.kind, &hash);
                self.remember(id, stored.kind, &hash);
                Outcome::Allowed(stored.kind)
            }
            Ok(Verified::No) => Outcome::BadCredentials,
            Err(e) => {
                warn!(device = id, error = %e, "cannot verify the secret");
                Outcome::BadCredentials
            }
        }
    }

    /// After a successful login with an argon2 hash of a generated secret: stores the fast
    /// hash instead (no flag day; a rotation in between wins). Returns the hash now stored.
    async fn upgrade(&self, id: &str, secret: &str, stored: &str) -> String {
        if !secret::should_upgrade(secret, stored) {
            return stored.to_owned();
        }
        let new = secret::hash_fast(secret);
        match self.registry.replace_hash_if(id, stored, &new).await {
            Ok(true) => {
                metrics::counter!(m::AUTH_REHASHED).increment(1);
                debug!(
                    device = id,
                    "secret hash upgraded from argon2id to hmac-sha256"
                );
                new
            }
            Ok(false) => stored.to_owned(),
            Err(e) => {
                debug!(device = id, error = %e, "cannot upgrade the secret hash now; next login retries");
                stored.to_owned()
            }
        }
    }

    /// One argon2 verification under `slot`, on the blocking pool.
    async fn verify_slow(
        &self,
        slot: Slot<'_>,
        secret: &str,
        phc: &str,
    ) -> Result<Verified, AuthError> {
        let secret = secret.to_owned();
        let phc = phc.to_owned();
        let (matched, took) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let matched = secret::verify(&secret, &phc);
            (matched, started.elapsed())
        })
        .await?;
        slot.record(took);
        matched.map(Verified::from)
    }
}

/// What one verification said.
enum Verified {
    Yes,
    No,
}

impl From<bool> for Verified {
    fn from(matched: bool) -> Verified {
        if matched {
            Verified::Yes
        } else {
            Verified::No
        }
    }
}
