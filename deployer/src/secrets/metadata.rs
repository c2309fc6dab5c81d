//! The `sops_*` metadata lines of a dotenv file: split them from the data (in any order,
//! since sops 3.7 did not sort them), validate them, and refuse key types and rules this
//! tool does not handle with an error that says what to do.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use super::dotenv::Line;
use super::error::SecretsError;
use super::rules::{CryptRule, Policy, DEFAULT_UNENCRYPTED_SUFFIX};

/// Prefix of every metadata name.
pub(crate) const PREFIX: &str = "sops_";

/// The version we write, the one the test vectors were made with.
pub(crate) const SOPS_VERSION: &str = "3.11.0";

/// One `sops_age__list_N__map_*` entry.
pub(crate) struct AgeStanza {
    /// The public recipient (`age1...`), for messages.
    pub(crate) recipient: String,
    /// The armored age file holding the data key.
    pub(crate) enc: String,
}

/// The metadata of one encrypted file.
pub(crate) struct Metadata {
    pub(crate) age: Vec<AgeStanza>,
    /// `sops_lastmodified` exactly as stored.
    pub(crate) last_modified: String,
    /// `sops_mac` (an `ENC[...]` value, or empty).
    pub(crate) mac: String,
    pub(crate) policy: Policy,
}

/// Cloud and PGP key families, by the metadata prefix sops uses for them.
const OTHER_KEY_FAMILIES: [(&str, &str); 6] = [
    ("sops_pgp__", "PGP"),
    ("sops_kms__", "AWS KMS"),
    ("sops_gcp_kms__", "GCP KMS"),
    ("sops_azure_kv__", "Azure Key Vault"),
    ("sops_hc_vault__", "HashiCorp Vault"),
    ("sops_hckms__", "HuaweiCloud KMS"),
];

/// Separates data lines from metadata and parses the metadata.
pub(crate) fn split(lines: Vec<Line>, file: &Path) -> Result<(Vec<Line>, Metadata), SecretsError> {
    if lines.is_empty() {
        return Err(SecretsError::Empty {
            file: file.to_path_buf(),
        });
    }
    let mut data = Vec::with_capacity(lines.len());
    let mut meta: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for l in lines {
        match l {
            Line::Pair { name, value, line } if name.starts_with(PREFIX) => {
                if meta.contains_key(&name) {
                    return Err(SecretsError::DuplicateMetadata {
                        file: file.to_path_buf(),
                        name,
                        line,
                    });
                }
                meta.insert(name, (value.to_string(), line));
            }
            other => data.push(other),
        }
    }
    if meta.is_empty() {
        return Err(SecretsError::NotEncrypted {
            file: file.to_path_buf(),
        });
    }
    let parsed = parse(meta, file)?;
    Ok((data, parsed))
}

fn parse(
    mut meta: BTreeMap<String, (String, usize)>,
    file: &Path,
) -> Result<Metadata, SecretsError> {
    let f = || file.to_path_buf();
    if meta
        .keys()
        .any(|k| k.starts_with("sops_key_groups__") || k == "sops_shamir_threshold")
    {
        return Err(SecretsError::ShamirKeyGroups { file: f() });
    }

    // age entries, by list index
    let mut age: BTreeMap<usize, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut other_families: Vec<&'static str> = Vec::new();
    let mut plain: BTreeMap<&'static str, String> = BTreeMap::new();
    const KNOWN: [&str; 10] = [
        "sops_lastmodified",
        "sops_mac",
        "sops_version",
        "sops_unencrypted_suffix",
        "sops_encrypted_suffix",
        "sops_unencrypted_regex",
        "sops_encrypted_regex",
        "sops_unencrypted_comment_regex",
        "sops_encrypted_comment_regex",
        "sops_mac_only_encrypted",
    ];
    for (name, (value, line)) in std::mem::take(&mut meta) {
        if let Some(rest) = name.strip_prefix("sops_age__list_") {
            let parsed = rest.split_once("__map_").and_then(|(idx, field)| {
                let idx: usize = idx.parse().ok()?;
                Some((idx, field))
            });
            let entry = match parsed {
                Some((idx, "recipient")) => &mut age.entry(idx).or_default().0,
                Some((idx, "enc")) => &mut age.entry(idx).or_default().1,
                _ => {
                    return Err(SecretsError::UnknownMetadata {
                        file: f(),
                        name,
                        line,
                    })
                }
            };
            *entry = Some(value);
        } else if let Some((_, family)) = OTHER_KEY_FAMILIES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
        {
            if !other_families.contains(family) {
                other_families.push(family);
            }
        } else if let Some(known) = KNOWN.iter().find(|k| **k == name) {
            plain.insert(known, value);
        } else {
            return Err(SecretsError::UnknownMetadata {
                file: f(),
                name,
                line,
            });
        }
    }

    if age.is_empty() {
        return Err(match other_families.as_slice() {
            ["PGP"] => SecretsError::PgpOnly { file: f() },
            [] => SecretsError::MissingMetadata {
                file: f(),
                name: "sops_age__list_0__map_enc".to_owned(),
            },
            families => SecretsError::CloudKmsOnly {
                file: f(),
                services: families.join(", "),
            },
        });
    }
    let mut stanzas = Vec::with_capacity(age.len());
    for (idx, (recipient, enc)) in age {
        let missing = |field: &str| SecretsError::MissingMetadata {
            file: f(),
            name: format!("sops_age__list_{idx}__map_{field}"),
        };
        let enc = enc.ok_or_else(|| missing("enc"))?;
        let recipient = recipient.ok_or_else(|| missing("recipient"))?;
        stanzas.push(AgeStanza { recipient, enc });
    }

    let mac = plain
        .remove("sops_mac")
        .ok_or(SecretsError::MissingMac { file: f() })?;
    let last_modified =
        plain
            .remove("sops_lastmodified")
            .ok_or_else(|| SecretsError::MissingMetadata {
                file: f(),
                name: "sops_lastmodified".to_owned(),
            })?;

    let policy = policy(&mut plain, file)?;
    Ok(Metadata {
        age: stanzas,
        last_modified,
        mac,
        policy,
    })
}

fn policy(plain: &mut BTreeMap<&'static str, String>, file: &Path) -> Result<Policy, SecretsError> {
    let f = || file.to_path_buf();
    for rule in [
        "sops_unencrypted_comment_regex",
        "sops_encrypted_comment_regex",
    ] {
        if plain.contains_key(rule) {
            return Err(SecretsError::UnsupportedRule {
                file: f(),
                rule: rule.trim_start_matches(PREFIX).to_owned(),
            });
        }
    }
    let regex = |name: &str, s: String| {
        Regex::new(&s).map_err(|e| SecretsError::InvalidMetadata {
            file: f(),
            name: name.to_owned(),
            reason: format!("not a valid regular expression: {e}"),
        })
    };
    let mut rules = Vec::new();
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    if let Some(s) = non_empty(plain.remove("sops_unencrypted_suffix")) {
        rules.push(CryptRule::UnencryptedSuffix(s));
    }
    if let Some(s) = non_empty(plain.remove("sops_encrypted_suffix")) {
        rules.push(CryptRule::EncryptedSuffix(s));
    }
    if let Some(s) = non_empty(plain.remove("sops_unencrypted_regex")) {
        rules.push(CryptRule::UnencryptedRegex(regex(
            "sops_unencrypted_regex",
            s,
        )?));
    }
    if let Some(s) = non_empty(plain.remove("sops_encrypted_regex")) {
        rules.push(CryptRule::EncryptedRegex(regex("sops_encrypted_regex", s)?));
    }
    if rules.len() > 1 {
        return Err(SecretsError::InvalidMetadata {
            file: f(),
            name: "sops_*_suffix / sops_*_regex".to_owned(),
            reason: "more than one crypt rule; a file may use only one".to_owned(),
        });
    }
    let rule = rules
        .pop()
        .unwrap_or_else(|| CryptRule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()));
    let mac_only_encrypted = match plain.remove("sops_mac_only_encrypted").as_deref() {
        None | Some("") => false,
        Some("true" | "True" | "TRUE" | "t" | "T" | "1") => true,
        Some("false" | "False" | "FALSE" | "f" | "F" | "0") => false,
        Some(_) => {
            return Err(SecretsError::InvalidMetadata {
                file: f(),
                name: "sops_mac_only_encrypted".to_owned(),
                reason: "expected true or false".to_owned(),
            })
        }
    };
    Ok(Policy {
        rule,
        mac_only_encrypted,
    })
}
