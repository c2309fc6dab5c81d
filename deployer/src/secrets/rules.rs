//! Which values of a file are encrypted (the SOPS crypt rule: `unencrypted_suffix`,
//! `encrypted_suffix`, `unencrypted_regex` or `encrypted_regex`) and which are covered by
//! the MAC (`mac_only_encrypted`).

use regex::Regex;

/// The suffix sops uses when a file names no rule.
pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// One crypt rule; a file has exactly one.
#[derive(Clone, Debug)]
pub enum CryptRule {
    /// Values whose name ends with the suffix stay clear; everything else is encrypted.
    UnencryptedSuffix(String),
    /// Only values whose name ends with the suffix are encrypted.
    EncryptedSuffix(String),
    /// Values whose name matches stay clear.
    UnencryptedRegex(Regex),
    /// Only values whose name matches are encrypted.
    EncryptedRegex(Regex),
}

/// How a file is encrypted: its crypt rule and MAC scope.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Which values are encrypted.
    pub rule: CryptRule,
    /// When true the MAC covers encrypted values only (seeded so it differs from a full MAC).
    pub mac_only_encrypted: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rule: CryptRule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()),
            mac_only_encrypted: false,
        }
    }
}

impl Policy {
    /// Whether the item at `name` (`None` for a top-level comment, whose key path is empty)
    /// is encrypted. Like sops, regexes search (they are not anchored unless they say so).
    pub fn encrypts(&self, name: Option<&str>) -> bool {
        match (&self.rule, name) {
            (CryptRule::UnencryptedSuffix(s), Some(n)) => !n.ends_with(s.as_str()),
            (CryptRule::EncryptedSuffix(s), Some(n)) => n.ends_with(s.as_str()),
            (CryptRule::UnencryptedRegex(r), Some(n)) => !r.is_match(n),
            (CryptRule::EncryptedRegex(r), Some(n)) => r.is_match(n),
            (CryptRule::UnencryptedSuffix(_) | CryptRule::UnencryptedRegex(_), None) => true,
            (CryptRule::EncryptedSuffix(_) | CryptRule::EncryptedRegex(_), None) => false,
        }
    }

    /// The metadata lines (name, value) that record this policy in a file.
    pub(crate) fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![match &self.rule {
            CryptRule::UnencryptedSuffix(s) => ("sops_unencrypted_suffix", s.clone()),
            CryptRule::EncryptedSuffix(s) => ("sops_encrypted_suffix", s.clone()),
            CryptRule::UnencryptedRegex(r) => ("sops_unencrypted_regex", r.as_str().to_owned()),
            CryptRule::EncryptedRegex(r) => ("sops_encrypted_regex", r.as_str().to_owned()),
        }];
        if self.mac_only_encrypted {
            out.push(("sops_mac_only_encrypted", "true".to_owned()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_encrypts_comments_and_all_but_suffix() {
        let p = Policy::default();
        assert!(p.encrypts(None));
        assert!(p.encrypts(Some("A")));
        assert!(!p.encrypts(Some("PUBLIC_unencrypted")));
    }

    #[test]
    fn encrypted_regex_leaves_comments_clear() {
        let p = Policy {
            rule: CryptRule::EncryptedRegex(Regex::new("^(TF_VAR_|AWS_SECRET_)").unwrap()),
            mac_only_encrypted: false,
        };
        assert!(!p.encrypts(None));
        assert!(p.encrypts(Some("TF_VAR_x")));
        assert!(!p.encrypts(Some("OS_USERNAME")));
    }
}
