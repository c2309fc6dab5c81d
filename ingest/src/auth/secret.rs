//! Device secrets: generation (random, shown once), the hash stored in the database,
//! verification, and the fingerprint used as a cache key so that a verified secret is never
//! kept in memory in clear.
//!
//! Two self-describing hash schemes:
//! - **fast**, `$hmac-sha256$v=1$<salt>$<mac>`: HMAC-SHA-256 keyed by a random 16-byte salt of
//!   the account, verified in microseconds and compared in constant time. For secrets with the
//!   shape of a generated one (32 random bytes, 43 base64url characters): against 256 bits of
//!   entropy a slow hash buys nothing, and a reconnect storm must not queue on argon2.
//! - **slow**, argon2id (PHC string): for any other secret, i.e. one a person chose, where a
//!   slow hash protects a weak secret against offline guessing.
//!
//! Existing argon2id hashes of generated secrets keep working and are replaced by the fast
//! scheme at the account's next successful login (`should_upgrade`).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::AuthError;

/// Prefix of the fast scheme's hash strings.
pub const FAST_PREFIX: &str = "$hmac-sha256$v=1$";
/// Bytes of salt (the HMAC key) per account in the fast scheme.
const FAST_SALT_BYTES: usize = 16;

/// How a stored hash is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC-SHA-256 with a per-account salt: microseconds, no verification slot needed.
    Fast,
    /// argon2id: tens of milliseconds and 19 MiB, behind the verification gate.
    Slow,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Fast => "hmac-sha256",
            Scheme::Slow => "argon2id",
        }
    }
}

/// The scheme of a stored hash string.
pub fn scheme(stored: &str) -> Scheme {
    if stored.starts_with(FAST_PREFIX) {
        Scheme::Fast
    } else {
        Scheme::Slow
    }
}

/// True when `secret` has the shape of a generated secret: 43 base64url characters that
/// decode to 32 bytes.
pub fn looks_generated(secret: &str) -> bool {
    secret.len() == 43
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(secret)
            .is_ok_and(|b| b.len() == SECRET_BYTES)
}

/// A hash stored with the slow scheme for a secret that qualifies for the fast one: replace
/// it after a successful verification.
pub fn should_upgrade(secret: &str, stored: &str) -> bool {
    scheme(stored) == Scheme::Slow && looks_generated(secret)
}

/// The hash to store for `secret`: fast for a generated-looking secret, argon2id otherwise.
pub fn hash(secret: &str) -> Result<String, AuthError> {
    if looks_generated(secret) {
        Ok(hash_fast(secret))
    } else {
        hash_slow(secret)
    }
}

/// The fast scheme's hash string of `secret` with a fresh random salt.
pub fn hash_fast(secret: &str) -> String {
    let mut salt = [0u8; FAST_SALT_BYTES];
    rand::fill(&mut salt);
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!(
        "{FAST_PREFIX}{}${}",
        b64.encode(salt),
        b64.encode(fast_mac(&salt, secret).finalize().into_bytes())
    )
}

fn fast_mac(salt: &[u8], secret: &str) -> Hmac<Sha256> {
    // HMAC accepts a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).unwrap_or_else(|_| unreachable!());
    mac.update(secret.as_bytes());
    mac
}

fn verify_fast(secret: &str, stored: &str) -> Result<bool, AuthError> {
    let corrupt = |what: &str| AuthError::CorruptHash(format!("{what} in a {FAST_PREFIX} hash"));
    let rest = stored
        .strip_prefix(FAST_PREFIX)
        .ok_or_else(|| corrupt("no prefix"))?;
    let (salt, tag) = rest.split_once('$').ok_or_else(|| corrupt("no tag"))?;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let salt = b64.decode(salt).map_err(|_| corrupt("bad salt"))?;
    let tag = b64.decode(tag).map_err(|_| corrupt("bad tag"))?;
    if salt.len() != FAST_SALT_BYTES || tag.len() != 32 {
        return Err(corrupt("wrong lengths"));
    }
    // Constant-time comparison.
    Ok(fast_mac(&salt, secret).verify_slice(&tag).is_ok())
}

/// Random bytes in a generated secret (256 bits).
const SECRET_BYTES: usize = 32;

/// Longest password accepted from a client. Longer ones are refused before any hashing, so a
/// client cannot make the broker hash megabytes.
pub const MAX_SECRET_LEN: usize = 256;

/// Argon2id cost: OWASP's minimum recommendation (19 MiB, 2 passes, 1 lane). The parameters
/// are stored in each PHC string, so changing them later only affects new secrets.
fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new random secret: 32 bytes from the OS, base64url without padding (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The argon2id PHC string of `secret` with a fresh random salt.
pub fn hash_slow(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    let phc = hasher()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// True when `secret` matches the stored hash (either scheme). A malformed hash is an error
/// (a corrupt row), not a mismatch. A slow hash takes tens of milliseconds: run it off the
/// async workers.
pub fn verify(secret: &str, stored: &str) -> Result<bool, AuthError> {
    if secret.len() > MAX_SECRET_LEN {
        return Ok(false);
    }
    match scheme(stored) {
        Scheme::Fast => verify_fast(secret, stored),
        Scheme::Slow => verify_slow(secret, stored),
    }
}

fn verify_slow(secret: &str, phc: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(|e| AuthError::CorruptHash(e.to_string()))?;
    match Argon2::default().verify_password(secret.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(AuthError::CorruptHash(e.to_string())),
    }
}

/// SHA-256 of the secret: the cache key part that proves the same secret was presented again
/// without keeping the secret itself.
pub fn fingerprint(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_random_and_url_safe() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn generated_secrets_get_the_fast_scheme_and_chosen_ones_argon2() {
        let s = generate();
        assert!(looks_generated(&s));
        let h = hash(&s).unwrap();
        assert!(h.starts_with(FAST_PREFIX), "{h}");
        assert_eq!(scheme(&h), Scheme::Fast);
        assert!(!h.contains(&s));
        assert!(verify(&s, &h).unwrap());
        assert!(!verify("wrong", &h).unwrap());
        assert!(!verify(&generate(), &h).unwrap());
        assert_ne!(h, hash(&s).unwrap(), "a fresh salt each time");
        for chosen in [
            "correct horse battery staple",
            "x",
            &"a".repeat(42),
            &"#".repeat(43),
        ] {
            assert!(!looks_generated(chosen), "{chosen}");
            let h = hash(chosen).unwrap();
            assert_eq!(scheme(&h), Scheme::Slow, "{chosen}");
            assert!(verify(chosen, &h).unwrap());
        }
    }

    #[test]
    fn an_argon2_hash_of_a_generated_secret_is_to_be_upgraded() {
        let s = generate();
        let old = hash_slow(&s).unwrap();
        assert!(verify(&s, &old).unwrap(), "old hashes keep working");
        assert!(should_upgrade(&s, &old));
        assert!(!should_upgrade(&s, &hash_fast(&s)));
        assert!(!should_upgrade("chosen by a person", &old));
    }

    #[test]
    fn a_corrupt_fast_hash_is_an_error_not_a_match() {
        let s = generate();
        let good = hash_fast(&s);
        for bad in [
            FAST_PREFIX.to_string(),
            format!("{FAST_PREFIX}c2FsdA"),
            format!("{FAST_PREFIX}!!$AAAA"),
            format!("{FAST_PREFIX}c2FsdHNhbHRzYWx0c2FsdA$c2hvcnQ"),
            good[..good.len() - 4].to_string(),
        ] {
            assert!(
                matches!(verify(&s, &bad), Err(AuthError::CorruptHash(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hash_verifies_the_right_secret_only() {
        let s = generate();
        let phc = hash_slow(&s).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(&s));
        assert!(verify(&s, &phc).unwrap());
        assert!(!verify("wrong", &phc).unwrap());
        assert!(!verify(&"x".repeat(MAX_SECRET_LEN + 1), &phc).unwrap());
        // Same secret, different salt.
        assert_ne!(phc, hash_slow(&s).unwrap());
    }

    #[test]
    fn a_corrupt_stored_hash_is_an_error_not_a_match() {
        assert!(matches!(
            verify("x", "not a phc string"),
            Err(AuthError::CorruptHash(_))
        ));
        assert!(matches!(
            verify("x", "$argon2id$v=19$m=lots,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
            Err(AuthError::CorruptHash(_))
        ));
    }
}
