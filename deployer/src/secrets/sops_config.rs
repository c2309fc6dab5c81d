//! `.sops.yaml` creation rules: the first rule whose `path_regex` matches the file (relative
//! to the config's directory) gives its age recipients (a comma-separated string or a list)
//! and its crypt rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use super::age_layer;
use super::error::SecretsError;
use super::rules::{CryptRule, Policy, DEFAULT_UNENCRYPTED_SUFFIX};

/// What `.sops.yaml` says about one file.
#[derive(Clone, Debug)]
pub struct CreationRule {
    /// X25519 age recipients (`age1...`), validated.
    pub recipients: Vec<String>,
    /// Which values to encrypt and what the MAC covers.
    pub policy: Policy,
}

#[derive(Deserialize)]
struct ConfigFile {
    creation_rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyField {
    One(String),
    Many(Vec<String>),
}

impl KeyField {
    fn keys(&self) -> Vec<String> {
        match self {
            KeyField::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
            KeyField::Many(v) => v.iter().map(|k| k.trim().to_owned()).collect(),
        }
    }
}

#[derive(Deserialize)]
struct RawGroup {
    age: Option<KeyField>,
}

#[derive(Deserialize)]
struct RawRule {
    path_regex: Option<String>,
    age: Option<KeyField>,
    key_groups: Option<Vec<RawGroup>>,
    shamir_threshold: Option<u32>,
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<String>,
    encrypted_regex: Option<String>,
    unencrypted_comment_regex: Option<String>,
    encrypted_comment_regex: Option<String>,
    mac_only_encrypted: Option<bool>,
    /// pgp, kms, gcp_kms, ...: only looked at to explain a rule without age keys.
    #[serde(flatten)]
    _other: BTreeMap<String, serde_norway::Value>,
}

/// The age recipients `.sops.yaml` assigns to `file`.
pub fn recipients_for(sops_yaml: &Path, file: &Path) -> Result<Vec<String>, SecretsError> {
    creation_rule_for(sops_yaml, file).map(|r| r.recipients)
}

/// The creation rule `.sops.yaml` applies to `file`.
pub fn creation_rule_for(sops_yaml: &Path, file: &Path) -> Result<CreationRule, SecretsError> {
    let bad = |reason: String| SecretsError::SopsConfig {
        path: sops_yaml.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(sops_yaml).map_err(|source| SecretsError::Read {
        path: sops_yaml.to_path_buf(),
        source,
    })?;
    let config: ConfigFile = serde_norway::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let rules = config
        .creation_rules
        .ok_or_else(|| bad("it has no creation_rules".to_owned()))?;
    let relative = relative_to_config(sops_yaml, file);
    let mut chosen = None;
    for rule in &rules {
        let matches = match rule.path_regex.as_deref() {
            None | Some("") => true,
            Some(re) => Regex::new(re)
                .map_err(|e| bad(format!("path_regex `{re}` is invalid: {e}")))?
                .is_match(&relative),
        };
        if matches {
            chosen = Some(rule);
            break;
        }
    }
    let rule = chosen.ok_or_else(|| SecretsError::NoCreationRule {
        config: sops_yaml.to_path_buf(),
        file: file.to_path_buf(),
    })?;

    let groups = rule.key_groups.as_deref().unwrap_or_default();
    if groups.len() > 1 || rule.shamir_threshold.is_some_and(|t| t > 1) {
        return Err(SecretsError::ShamirKeyGroups {
            file: sops_yaml.to_path_buf(),
        });
    }
    let mut recipients: Vec<String> = rule.age.as_ref().map(KeyField::keys).unwrap_or_default();
    for g in groups {
        recipients.extend(g.age.as_ref().map(KeyField::keys).unwrap_or_default());
    }
    if recipients.is_empty() {
        return Err(SecretsError::NoAgeInRule {
            config: sops_yaml.to_path_buf(),
            file: file.to_path_buf(),
        });
    }
    for r in &recipients {
        age_layer::parse_recipient(r)?;
    }
    Ok(CreationRule {
        recipients,
        policy: policy(rule, sops_yaml)?,
    })
}

fn policy(rule: &RawRule, sops_yaml: &Path) -> Result<Policy, SecretsError> {
    let bad = |reason: String| SecretsError::SopsConfig {
        path: sops_yaml.to_path_buf(),
        reason,
    };
    for (set, name) in [
        (&rule.unencrypted_comment_regex, "unencrypted_comment_regex"),
        (&rule.encrypted_comment_regex, "encrypted_comment_regex"),
    ] {
        if set.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(SecretsError::UnsupportedRule {
                file: sops_yaml.to_path_buf(),
                rule: name.to_owned(),
            });
        }
    }
    let regex = |s: &str| Regex::new(s).map_err(|e| bad(format!("regex `{s}` is invalid: {e}")));
    let some = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let mut rules = Vec::new();
    if let Some(s) = some(&rule.unencrypted_suffix) {
        rules.push(CryptRule::UnencryptedSuffix(s));
    }
    if let Some(s) = some(&rule.encrypted_suffix) {
        rules.push(CryptRule::EncryptedSuffix(s));
    }
    if let Some(s) = some(&rule.unencrypted_regex) {
        rules.push(CryptRule::UnencryptedRegex(regex(&s)?));
    }
    if let Some(s) = some(&rule.encrypted_regex) {
        rules.push(CryptRule::EncryptedRegex(regex(&s)?));
    }
    if rules.len() > 1 {
        return Err(bad(
            "a creation rule may use only one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex".to_owned(),
        ));
    }
    Ok(Policy {
        rule: rules
            .pop()
            .unwrap_or_else(|| CryptRule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned())),
        mac_only_encrypted: rule.mac_only_encrypted.unwrap_or(false),
    })
}

/// The file's path relative to the directory of `.sops.yaml` (as sops matches it), with
/// `/` separators; the absolute path when the file lies elsewhere.
fn relative_to_config(sops_yaml: &Path, file: &Path) -> String {
    let absolute = |p: &Path| -> PathBuf {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    };
    let dir = absolute(sops_yaml.parent().unwrap_or(Path::new(".")));
    let file = absolute(file);
    let rel = file.strip_prefix(&dir).unwrap_or(&file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
