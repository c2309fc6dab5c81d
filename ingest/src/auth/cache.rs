//! Bounded in-memory cache of successful verifications, keyed by (account id, SHA-256 of the
//! secret). A hit skips argon2; a hit older than the freshness TTL still asks the database
//! whether the account is enabled and its hash unchanged (cheap), so a disabled account or a
//! rotated secret is noticed within the TTL. The secret itself is never stored.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::kind::Kind;

type Key = (String, [u8; 32]);

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    secret_hash: String,
    checked_at: Instant,
}

/// A cached verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    /// The PHC string the secret was verified against.
    pub secret_hash: String,
    /// True when the account state was confirmed less than a TTL ago.
    pub fresh: bool,
}

/// The verification cache (LRU, bounded).
pub struct AuthCache {
    entries: Mutex<LruCache<Key, Entry>>,
    ttl: Duration,
}

impl AuthCache {
    pub fn new(capacity: usize, ttl: Duration) -> AuthCache {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        AuthCache {
            entries: Mutex::new(LruCache::new(cap)),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Entry>> {
        // A panic while holding this lock cannot leave the LRU half-updated in a way that
        // matters (worst case: one entry lost), so a poisoned lock is simply reused.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks up a verification of this secret for this account.
    pub fn get(&self, id: &str, fingerprint: &[u8; 32]) -> Option<Hit> {
        let mut map = self.lock();
        let e = map.get(&(id.to_owned(), *fingerprint))?;
        Some(Hit {
            kind: e.kind,
            secret_hash: e.secret_hash.clone(),
            fresh: e.checked_at.elapsed() < self.ttl,
        })
    }

    /// Records a successful verification (or its confirmation) now.
    pub fn put(&self, id: &str, fingerprint: &[u8; 32], kind: Kind, secret_hash: &str) {
        let entry = Entry {
            kind,
            secret_hash: secret_hash.to_owned(),
            checked_at: Instant::now(),
        };
        self.lock().put((id.to_owned(), *fingerprint), entry);
    }

    /// Forgets one cached verification.
    pub fn remove(&self, id: &str, fingerprint: &[u8; 32]) {
        self.lock().pop(&(id.to_owned(), *fingerprint));
    }

    /// Forgets every cached verification of an account (disabled, rotated, deleted).
    pub fn forget_account(&self, id: &str) {
        let mut map = self.lock();
        let keys: Vec<Key> = map
            .iter()
            .filter(|(k, _)| k.0 == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            map.pop(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_fresh_within_the_ttl_then_stale() {
        let c = AuthCache::new(10, Duration::from_millis(50));
        let fp = [1u8; 32];
        assert!(c.get("d1", &fp).is_none());
        c.put("d1", &fp, Kind::Device, "$h");
        let hit = c.get("d1", &fp).unwrap();
        assert!(hit.fresh);
        assert_eq!(hit.kind, Kind::Device);
        assert!(
            c.get("d1", &[2u8; 32]).is_none(),
            "another secret is not a hit"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.get("d1", &fp).unwrap().fresh);
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_accounts() {
        let c = AuthCache::new(3, Duration::from_secs(5));
        for i in 0..10u8 {
            c.put(&format!("d{i}"), &[i; 32], Kind::Device, "$h");
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("d0", &[0; 32]).is_none());
        c.put("x", &[1; 32], Kind::Service, "$h");
        c.put("x", &[2; 32], Kind::Service, "$h");
        c.forget_account("x");
        assert!(c.get("x", &[1; 32]).is_none() && c.get("x", &[2; 32]).is_none());
        assert!(!c.is_empty());
    }
}
