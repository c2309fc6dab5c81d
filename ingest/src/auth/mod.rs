//! Device identity: the registry of accounts in the database (`registry`), their secrets
//! (`secret`: argon2id hashes), the verification cache (`cache`), the credential check
//! (`authenticator`) with its bounded admission to argon2 (`gate`), the broker's
//! authentication hook (`hook`) and the loop that closes the sessions of disabled accounts or
//! rotated secrets (`revoke`).
//!
//! Accounts are of two kinds (`kind`): tracking devices, which publish their own positions,
//! and services (backend replicas), which read every position and send commands. What each
//! may do on which topic is the broker's ACL (`crate::broker::acl`).

mod authenticator;
mod cache;
mod error;
mod gate;
mod hook;
mod kind;
mod registry;
mod revoke;
mod secret;

pub use authenticator::{
    default_parallel_verifications, AuthOptions, Authenticator, Identity, Outcome,
};
pub use cache::AuthCache;
pub use error::AuthError;
pub use hook::AuthenticateHook;
pub use kind::Kind;
pub use registry::{is_valid_account_id, DeviceInfo, Registry, StoredCredentials};
pub use revoke::{revoke_loop, RevokeOptions};
pub use secret::{
    fingerprint, generate as generate_secret, hash as hash_secret, hash_slow as hash_secret_slow,
    scheme as hash_scheme, verify as verify_secret, Scheme, MAX_SECRET_LEN,
};

/// Untrusted text (a username from a CONNECT) made fit for a log line: at most 64 characters,
/// control characters escaped.
pub fn log_safe(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    cut.escape_debug().to_string()
}
