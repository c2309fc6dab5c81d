//! The device registry in the database (`devices` table): add, list, enable/disable, rotate a
//! secret, and the lookups the authenticator makes. Counts its queries so that benchmarks can
//! report what a connection storm costs the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::error::AuthError;
use super::kind::Kind;
use super::secret;
use crate::metrics as m;

/// One account as `ingest device list` shows it (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_id: String,
    pub kind: Kind,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// What authentication needs about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    pub kind: Kind,
    pub enabled: bool,
    /// The stored hash string (either scheme, see `secret`).
    pub secret_hash: String,
}

/// True when `id` may name an account (one definition, shared with the ACL's topic rules).
pub use crate::topic_rules::is_valid_account_id;

/// Access to the `devices` table.
pub struct Registry {
    pool: Pool,
    queries: AtomicU64,
}

impl Registry {
    pub fn new(pool: Pool) -> Registry {
        Registry {
            pool,
            queries: AtomicU64::new(0),
        }
    }

    /// Queries made since start (for benchmarks and tests).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::AUTH_DB_QUERIES).increment(1);
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, AuthError> {
        Ok(self.pool.get().await?)
    }

    /// Registers a new account and returns its secret (the only time it exists in clear).
    pub async fn add(&self, id: &str, kind: Kind) -> Result<String, AuthError> {
        let secret = secret::generate();
        self.add_with_secret(id, kind, &secret).await?;
        Ok(secret)
    }

    /// Registers a new account with a secret chosen by the caller (a service account whose
    /// secret lives in the deployment's credentials). `AlreadyExists` when the id is taken.
    pub async fn add_with_secret(
        &self,
        id: &str,
        kind: Kind,
        secret: &str,
    ) -> Result<(), AuthError> {
        if !is_valid_account_id(id) {
            return Err(AuthError::InvalidId(id.to_owned()));
        }
        let hash = hash_off_runtime(secret.to_owned()).await?;
        let client = self.client().await?;
        self.count();
        let inserted = client
            .execute(
                "INSERT INTO devices (device_id, secret_hash, kind) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING",
                &[&id, &hash, &kind.as_str()],
            )
            .await?;
        if inserted == 0 {
            return Err(AuthError::AlreadyExists(id.to_owned()));
        }
        Ok(())
    }

    /// Replaces the secret of an account with one chosen by the caller, only while its stored
    /// hash is still `expected_hash` (so two concurrent callers cannot undo each other).
    /// Returns false when the account changed or vanished in between.
    pub async fn replace_secret_if(
        &self,
        id: &str,
        expected_hash: &str,
        secret: &str,
    ) -> Result<bool, AuthError> {
        let hash = hash_off_runtime(secret.to_owned()).await?;
        self.replace_hash_if(id, expected_hash, &hash).await
    }

    /// Stores `new_hash` for an account only while its stored hash is still `expected_hash`
    /// (the upgrade of an old hash at login: a rotation in between wins). Returns false when
    /// the account changed or vanished in between.
    pub async fn replace_hash_if(
        &self,
        id: &str,
        expected_hash: &str,
        new_hash: &str,
    ) -> Result<bool, AuthError> {
        let client = self.client().await?;
        self.count();
        let n = client
            .execute(
                "UPDATE devices SET secret_hash = $3 WHERE device_id = $1 AND secret_hash = $2",
                &[&id, &expected_hash, &new_hash],
            )
            .await?;
        Ok(n == 1)
    }

    /// Every account, ordered by id.
    pub async fn list(&self) -> Result<Vec<DeviceInfo>, AuthError> {
        let client = self.client().await?;
        self.count();
        let rows = client
            .query("SELECT device_id, kind, enabled, created_at, last_seen_at FROM devices ORDER BY device_id", &[])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceInfo {
                    device_id: r.get(0),
                    kind: r.get::<_, String>(1).parse()?,
                    enabled: r.get(2),
                    created_at: r.get(3),
                    last_seen_at: r.get(4),
                })
            })
            .collect()
    }

    /// Enables or disables an account. Connected sessions of a disabled account are closed by
    /// the broker within its revocation interval.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), AuthError> {
        let client = self.client().await?;
        self.count();
        let n = client
            .execute(
                "UPDATE devices SET enabled = $2 WHERE device_id = $1",
                &[&id, &enabled],
            )
            .await?;
        if n == 0 {
            return Err(AuthError::NotFound(id.to_owned()));
        }
        Ok(())
    }

    /// Replaces the secret of an account and returns the new one. Sessions that logged in with
    /// the old secret are closed by the broker within its revocation interval.
    pub async fn rotate(&self, id: &str) -> Result<String, AuthError> {
        let secret = secret::generate();
        let hash = hash_off_runtime(secret.clone()).await?;
        let client = self.client().await?;
        self.count();
        let n = client
            .execute(
                "UPDATE devices SET secret_hash = $2 WHERE device_id = $1",
                &[&id, &hash],
            )
            .await?;
        if n == 0 {
            return Err(AuthError::NotFound(id.to_owned()));
        }
        Ok(secret)
    }

    /// The stored credentials of one account, `None` when it does not exist.
    pub async fn credentials(&self, id: &str) -> Result<Option<StoredCredentials>, AuthError> {
        let client = self.client().await?;
        self.count();
        let row = client
            .query_opt(
                "SELECT kind, enabled, secret_hash FROM devices WHERE device_id = $1",
                &[&id],
            )
            .await?;
        row.map(|r| {
            Ok(StoredCredentials {
                kind: r.get::<_, String>(0).parse()?,
                enabled: r.get(1),
                secret_hash: r.get(2),
            })
        })
        .transpose()
    }

    /// For many accounts at once: whether each is enabled and its current hash. Accounts
    /// missing from the answer no longer exist.
    pub async fn states(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, (bool, String)>, AuthError> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let client = self.client().await?;
        for chunk in ids.chunks(5_000) {
            self.count();
            let rows = client
                .query(
                    "SELECT device_id, enabled, secret_hash FROM devices WHERE device_id = ANY($1)",
                    &[&chunk],
                )
                .await?;
            for r in rows {
                out.insert(r.get(0), (r.get(1), r.get(2)));
            }
        }
        Ok(out)
    }

    /// Records that these accounts were seen connected now.
    pub async fn touch(&self, ids: &[String]) -> Result<(), AuthError> {
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.client().await?;
        for chunk in ids.chunks(5_000) {
            self.count();
            client
                .execute(
                    "UPDATE devices SET last_seen_at = now() WHERE device_id = ANY($1)",
                    &[&chunk],
                )
                .await?;
        }
        Ok(())
    }
}

/// argon2 is deliberately slow (a chosen secret gets it): hash on the blocking pool, not on
/// the async workers.
async fn hash_off_runtime(secret: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || secret::hash(&secret)).await?
}
