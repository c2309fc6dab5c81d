//! Decrypting a SOPS dotenv file: unwrap the data key with age, decrypt and authenticate
//! every value and encrypted comment, recompute the MAC and refuse the file unless it
//! matches the stored one.

use std::path::Path;

use zeroize::Zeroizing;

use super::age_layer;
use super::cipher::{self, DataKey};
use super::dotenv::{self, Line};
use super::error::SecretsError;
use super::identities::Identities;
use super::mac::MacHasher;
use super::metadata::{self, Metadata};
use super::rules::Policy;
use super::timestamp;
use super::values::Secrets;

/// A verified plaintext file.
pub(crate) struct Decrypted {
    /// Data lines and comments in file order, all in clear.
    pub(crate) lines: Vec<Line>,
    /// The file's crypt rule and MAC scope, to re-encrypt it the same way.
    pub(crate) policy: Policy,
}

impl Decrypted {
    pub(crate) fn into_secrets(self) -> Secrets {
        let mut out = Secrets::new();
        for l in self.lines {
            if let Line::Pair { name, value, .. } = l {
                out.insert(name, value);
            }
        }
        out
    }
}

/// Parses, decrypts and verifies one file's content. `file` names it in errors.
pub(crate) fn decrypt_bytes(
    bytes: &[u8],
    file: &Path,
    ids: &Identities,
) -> Result<Decrypted, SecretsError> {
    let lines = dotenv::parse_bytes(bytes, file)?;
    let (data, meta) = metadata::split(lines, file)?;
    dotenv::check_unique_names(&data, file)?;
    let key = age_layer::unwrap_data_key(&meta.age, ids, file)?;
    let mut mac = MacHasher::new(meta.policy.mac_only_encrypted);
    let mut clear = Vec::with_capacity(data.len());
    for l in data {
        clear.push(match l {
            Line::Comment { text, line } => Line::Comment {
                text: decrypt_comment(text, line, &key, &meta.policy, file)?,
                line,
            },
            Line::Pair { name, value, line } => {
                let encrypted = meta.policy.encrypts(Some(&name));
                let value = if encrypted {
                    decrypt_value(&name, &value, line, &key, file)?
                } else {
                    value
                };
                if encrypted || !meta.policy.mac_only_encrypted {
                    mac.update(value.as_bytes());
                }
                Line::Pair { name, value, line }
            }
        });
    }
    verify_mac(&meta, &key, mac, file)?;
    Ok(Decrypted {
        lines: clear,
        policy: meta.policy,
    })
}

fn decrypt_value(
    name: &str,
    value: &str,
    line: usize,
    key: &DataKey,
    file: &Path,
) -> Result<Zeroizing<String>, SecretsError> {
    if value.is_empty() {
        return Ok(Zeroizing::new(String::new()));
    }
    let enc = cipher::parse(value).map_err(|reason| SecretsError::MalformedValue {
        file: file.to_path_buf(),
        name: name.to_owned(),
        line,
        reason,
    })?;
    if enc.kind != "str" {
        return Err(SecretsError::UnsupportedValueType {
            file: file.to_path_buf(),
            name: name.to_owned(),
            line,
            kind: enc.kind,
        });
    }
    let aad = format!("{name}:");
    let tampered = || SecretsError::TamperedValue {
        file: file.to_path_buf(),
        name: name.to_owned(),
        line,
    };
    let plain = cipher::decrypt(key, &enc, aad.as_bytes()).ok_or_else(tampered)?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| tampered())
}

/// Comments are outside the MAC. Like sops, a clear comment where the rule says
/// "encrypted" is kept (files from old sops); unlike sops, a comment that is an `ENC[...]`
/// value and fails authentication is refused rather than kept as garbage.
fn decrypt_comment(
    text: Zeroizing<String>,
    line: usize,
    key: &DataKey,
    policy: &Policy,
    file: &Path,
) -> Result<Zeroizing<String>, SecretsError> {
    if !policy.encrypts(None) || text.is_empty() {
        return Ok(text);
    }
    if !cipher::looks_encrypted(&text) {
        tracing::warn!(file = %file.display(), line, "comment is not encrypted although the file's rule encrypts comments");
        return Ok(text);
    }
    let tampered = || SecretsError::TamperedComment {
        file: file.to_path_buf(),
        line,
    };
    let enc = cipher::parse(&text).map_err(|_| tampered())?;
    if enc.kind != "comment" {
        return Err(tampered());
    }
    let plain = cipher::decrypt(key, &enc, b":").ok_or_else(tampered)?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| tampered())
}

fn verify_mac(
    meta: &Metadata,
    key: &DataKey,
    computed: MacHasher,
    file: &Path,
) -> Result<(), SecretsError> {
    if meta.mac.is_empty() {
        return Err(SecretsError::MissingMac {
            file: file.to_path_buf(),
        });
    }
    let aad = timestamp::canonical(&meta.last_modified).map_err(|reason| {
        SecretsError::InvalidMetadata {
            file: file.to_path_buf(),
            name: "sops_lastmodified".to_owned(),
            reason,
        }
    })?;
    let mismatch = || SecretsError::MacMismatch {
        file: file.to_path_buf(),
    };
    let enc = cipher::parse(&meta.mac).map_err(|_| mismatch())?;
    let stored = cipher::decrypt(key, &enc, aad.as_bytes()).ok_or_else(mismatch)?;
    if stored.as_slice() != computed.finish().as_bytes() {
        return Err(mismatch());
    }
    Ok(())
}
