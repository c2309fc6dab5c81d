//! Encrypting plaintext dotenv lines into a SOPS dotenv file that sops 3.11 reads: a fresh
//! data key wrapped for every age recipient, fresh IVs, the MAC, and sorted metadata lines.

use std::path::Path;

use super::age_layer;
use super::cipher::{self, DataKey};
use super::dotenv::{self, Line};
use super::error::SecretsError;
use super::mac::MacHasher;
use super::metadata::{PREFIX, SOPS_VERSION};
use super::rules::Policy;
use super::timestamp;

/// Encrypts `lines` (plaintext, comments included) for `recipients` under `policy`.
pub(crate) fn encrypt_lines(
    lines: &[Line],
    recipients: &[age::x25519::Recipient],
    policy: &Policy,
    file: &Path,
) -> Result<String, SecretsError> {
    if recipients.is_empty() {
        return Err(SecretsError::NoRecipients);
    }
    for l in lines {
        if let Line::Pair { name, line, .. } = l {
            if name.starts_with(PREFIX) {
                return Err(SecretsError::ReservedName {
                    file: file.to_path_buf(),
                    name: name.clone(),
                    line: *line,
                });
            }
        }
    }
    dotenv::check_unique_names(lines, file)?;

    let key = DataKey::generate();
    let seal = |plain: &[u8], aad: &[u8], kind: &str| {
        cipher::encrypt(&key, plain, aad, kind).map_err(|_| SecretsError::Encrypt {
            reason: "AES-GCM sealing failed".to_owned(),
        })
    };
    let mut mac = MacHasher::new(policy.mac_only_encrypted);
    let mut out = Vec::with_capacity(lines.len() + 8);
    for l in lines {
        out.push(match l {
            Line::Comment { text, line } => {
                let text = if policy.encrypts(None) && !text.is_empty() {
                    seal(text.as_bytes(), b":", "comment")?.into()
                } else {
                    text.clone()
                };
                Line::Comment { text, line: *line }
            }
            Line::Pair { name, value, line } => {
                let encrypted = policy.encrypts(Some(name));
                if encrypted || !policy.mac_only_encrypted {
                    mac.update(value.as_bytes());
                }
                let value = if encrypted && !value.is_empty() {
                    seal(value.as_bytes(), format!("{name}:").as_bytes(), "str")?.into()
                } else {
                    value.clone()
                };
                Line::Pair {
                    name: name.clone(),
                    value,
                    line: *line,
                }
            }
        });
    }

    let last_modified = timestamp::now().map_err(|reason| SecretsError::Encrypt { reason })?;
    let mac = seal(mac.finish().as_bytes(), last_modified.as_bytes(), "str")?;
    let mut meta: Vec<(String, String)> = Vec::new();
    for (i, r) in recipients.iter().enumerate() {
        meta.push((
            format!("sops_age__list_{i}__map_enc"),
            age_layer::wrap_data_key(&key, r)?,
        ));
        meta.push((format!("sops_age__list_{i}__map_recipient"), r.to_string()));
    }
    meta.push(("sops_lastmodified".to_owned(), last_modified));
    meta.push(("sops_mac".to_owned(), mac));
    for (name, value) in policy.metadata() {
        meta.push((name.to_owned(), value));
    }
    meta.push(("sops_version".to_owned(), SOPS_VERSION.to_owned()));
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(meta.into_iter().map(|(name, value)| Line::Pair {
        name,
        value: value.into(),
        line: 0,
    }));
    Ok(dotenv::emit(&out).to_string())
}
