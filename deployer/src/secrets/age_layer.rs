//! The age layer: the file's data key is encrypted once per recipient as an armored age
//! file. Unwrapping tries every stanza against every identity; wrapping makes one armored
//! age file per X25519 recipient.

use std::io::{Read as _, Write as _};
use std::path::Path;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use zeroize::Zeroizing;

use super::cipher::DataKey;
use super::error::SecretsError;
use super::identities::Identities;
use super::metadata::AgeStanza;

/// The kinds of age recipient string we can meet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecipientKind {
    X25519,
    PostQuantum,
    Plugin,
    Other,
}

/// Classifies a recipient string by its prefix (bech32 data never contains a `1`, so a
/// second `1` means a plugin name such as `age1yubikey1...`).
pub(crate) fn recipient_kind(r: &str) -> RecipientKind {
    if r.starts_with("age1pq1") {
        RecipientKind::PostQuantum
    } else if let Some(rest) = r.strip_prefix("age1") {
        if rest.contains('1') {
            RecipientKind::Plugin
        } else {
            RecipientKind::X25519
        }
    } else {
        RecipientKind::Other
    }
}

/// Parses an X25519 recipient, with a specific error for post-quantum and plugin ones.
pub(crate) fn parse_recipient(r: &str) -> Result<age::x25519::Recipient, SecretsError> {
    let r = r.trim();
    match recipient_kind(r) {
        RecipientKind::PostQuantum => Err(SecretsError::PostQuantumAge {
            what: format!("recipient {r}"),
        }),
        RecipientKind::Plugin => Err(SecretsError::PluginAge {
            what: format!("recipient {r}"),
        }),
        _ => r
            .parse::<age::x25519::Recipient>()
            .map_err(|e| SecretsError::BadRecipient {
                recipient: r.to_owned(),
                reason: e.to_string(),
            }),
    }
}

/// Why one armored payload did not open.
pub(crate) enum OpenError {
    /// No identity matches its stanzas.
    NoMatch,
    /// It is not a valid age file.
    Malformed(String),
}

/// Decrypts one armored age payload with any of the identities.
pub(crate) fn open_armored(
    armored: &str,
    ids: &Identities,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let reader = ArmoredReader::new(armored.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| OpenError::Malformed(e.to_string()))?;
    let mut stream = decryptor.decrypt(ids.as_dyn()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => OpenError::NoMatch,
        other => OpenError::Malformed(other.to_string()),
    })?;
    let mut out = Zeroizing::new(Vec::new());
    stream
        .read_to_end(&mut out)
        .map_err(|e| OpenError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Recovers the data key from the file's age stanzas.
pub(crate) fn unwrap_data_key(
    stanzas: &[AgeStanza],
    ids: &Identities,
    file: &Path,
) -> Result<DataKey, SecretsError> {
    let mut malformed = None;
    let mut any_usable = false;
    for s in stanzas {
        match open_armored(&s.enc, ids) {
            Ok(bytes) => {
                return DataKey::from_slice(&bytes).ok_or(SecretsError::BadDataKey {
                    file: file.to_path_buf(),
                    len: bytes.len(),
                })
            }
            Err(OpenError::NoMatch) => {
                any_usable |= recipient_kind(&s.recipient) == RecipientKind::X25519;
            }
            Err(OpenError::Malformed(reason)) => {
                malformed.get_or_insert((s.recipient.clone(), reason));
            }
        }
    }
    let all = |kind: RecipientKind| stanzas.iter().all(|s| recipient_kind(&s.recipient) == kind);
    let list = stanzas
        .iter()
        .map(|s| s.recipient.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !any_usable {
        if all(RecipientKind::PostQuantum) {
            return Err(SecretsError::PostQuantumAge {
                what: format!("{} is encrypted only for {list}", file.display()),
            });
        }
        if all(RecipientKind::Plugin) {
            return Err(SecretsError::PluginAge {
                what: format!("{} is encrypted only for {list}", file.display()),
            });
        }
        if let Some((recipient, reason)) = malformed {
            return Err(SecretsError::AgePayload {
                file: file.to_path_buf(),
                recipient,
                reason,
            });
        }
    }
    Err(SecretsError::NoMatchingIdentity {
        file: file.to_path_buf(),
        count: ids.len(),
        sources: ids.sources(),
        recipients: list,
    })
}

/// Encrypts the data key for one recipient as an armored age file.
pub(crate) fn wrap_data_key(
    key: &DataKey,
    recipient: &age::x25519::Recipient,
) -> Result<String, SecretsError> {
    let fail = |e: &dyn std::fmt::Display| SecretsError::Encrypt {
        reason: format!("age encryption of the data key failed: {e}"),
    };
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
            .map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| fail(&e))?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| fail(&e))?;
    writer.write_all(key.bytes()).map_err(|e| fail(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| fail(&e))?;
    let mut text = String::from_utf8(out).map_err(|e| fail(&e))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_recipients() {
        assert_eq!(
            recipient_kind("age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw"),
            RecipientKind::X25519
        );
        assert_eq!(recipient_kind("age1pq1abcdef"), RecipientKind::PostQuantum);
        assert_eq!(recipient_kind("age1yubikey1qabc"), RecipientKind::Plugin);
        assert_eq!(recipient_kind("ssh-ed25519 AAAA"), RecipientKind::Other);
        assert!(matches!(
            parse_recipient("age1pq1abcdef"),
            Err(SecretsError::PostQuantumAge { .. })
        ));
        assert!(matches!(
            parse_recipient("age1yubikey1qabc"),
            Err(SecretsError::PluginAge { .. })
        ));
        assert!(matches!(
            parse_recipient("age1nope"),
            Err(SecretsError::BadRecipient { .. })
        ));
    }

    #[test]
    fn wrap_then_unwrap() {
        let id = age::x25519::Identity::generate();
        let key = DataKey::generate();
        let armored = wrap_data_key(&key, &id.to_public()).unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        let ids = Identities::from_identities(vec![id], "test");
        let stanza = AgeStanza {
            recipient: ids.recipients()[0].clone(),
            enc: armored,
        };
        let back = unwrap_data_key(&[stanza], &ids, Path::new("f")).unwrap();
        assert_eq!(back.bytes(), key.bytes());
    }
}
