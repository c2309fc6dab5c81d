//! `secrets init`: generate an X25519 age identity and write it to a keys file with mode
//! 0600, never overwriting an existing one.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use zeroize::Zeroizing;

use super::error::SecretsError;
use super::identities;
use super::timestamp;

/// Creates `keys_file` holding a new age identity and returns its public recipient.
pub fn init_key(keys_file: &Path) -> Result<String, SecretsError> {
    let exists = || SecretsError::KeyFileExists {
        path: keys_file.to_path_buf(),
    };
    if keys_file.symlink_metadata().is_ok() {
        return Err(exists());
    }
    if let Some(parent) = keys_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| SecretsError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
    }
    let (secret, recipient) = identities::generate();
    let created = timestamp::now().unwrap_or_default();
    let content = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        secret.as_str()
    ));
    let write_err = |source| SecretsError::Write {
        path: keys_file.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(keys_file)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                write_err(e)
            }
        })?;
    f.write_all(content.as_bytes()).map_err(write_err)?;
    f.sync_all().map_err(write_err)?;
    tracing::info!(path = %keys_file.display(), %recipient, "created age key");
    Ok(recipient)
}
