//! Device secrets: generation (random, shown once), the salted slow hash stored in the
//! database (argon2id, PHC string), verification, and the fast fingerprint used as a cache key
//! so that a verified secret is never kept in memory in clear.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::error::AuthError;

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
pub fn hash(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    let phc = hasher()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// True when `secret` matches the PHC string `phc`. A malformed PHC string is an error (a
/// corrupt row), not a mismatch.
pub fn verify(secret: &str, phc: &str) -> Result<bool, AuthError> {
    if secret.len() > MAX_SECRET_LEN {
        return Ok(false);
    }
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
    fn hash_verifies_the_right_secret_only() {
        let s = generate();
        let phc = hash(&s).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains(&s));
        assert!(verify(&s, &phc).unwrap());
        assert!(!verify("wrong", &phc).unwrap());
        assert!(!verify(&"x".repeat(MAX_SECRET_LEN + 1), &phc).unwrap());
        // Same secret, different salt.
        assert_ne!(phc, hash(&s).unwrap());
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
