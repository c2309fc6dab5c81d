//! The SOPS MAC: SHA-512 over the plaintext values in file order (comments excluded),
//! written as uppercase hex. With `mac_only_encrypted` only encrypted values count and the
//! hash is first fed sha256("sops"), so the two kinds of MAC never coincide.

use sha2::{Digest, Sha256, Sha512};

/// Accumulates the MAC of one file.
pub(crate) struct MacHasher(Sha512);

impl MacHasher {
    pub(crate) fn new(mac_only_encrypted: bool) -> Self {
        let mut h = Sha512::new();
        if mac_only_encrypted {
            h.update(Sha256::digest(b"sops"));
        }
        Self(h)
    }

    pub(crate) fn update(&mut self, value: &[u8]) {
        self.0.update(value);
    }

    /// The MAC as sops prints it: uppercase hex of the SHA-512.
    pub(crate) fn finish(self) -> String {
        use std::fmt::Write as _;
        let digest = self.0.finalize();
        let mut out = String::with_capacity(digest.len() * 2);
        for b in digest {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02X}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mac_is_uppercase_sha512_of_nothing() {
        let mac = MacHasher::new(false).finish();
        assert_eq!(mac.len(), 128);
        assert!(mac.starts_with("CF83E1357EEFB8BD"));
        assert_ne!(MacHasher::new(true).finish(), mac);
    }
}
