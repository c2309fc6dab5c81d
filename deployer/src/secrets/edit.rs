//! `secrets edit`: decrypt into a private temporary file, run the editor, and re-encrypt
//! for the recipients `.sops.yaml` names, replacing the file atomically. Unchanged content
//! leaves the file untouched; invalid content leaves it untouched and discards the edit.

use std::fs::{OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use zeroize::Zeroizing;

use super::age_layer;
use super::decrypt;
use super::dotenv;
use super::encrypt;
use super::error::SecretsError;
use super::identities::Identities;
use super::sops_config;

/// What `edit_file` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditOutcome {
    /// The content did not change; the file was not written.
    Unchanged,
    /// The file was re-encrypted with the new content.
    Updated,
    /// The file did not exist and was created.
    Created,
}

/// Opens `path` (a SOPS dotenv file, or a new one) in `editor` and re-encrypts it.
/// `editor` is a shell command line (like `$EDITOR`, e.g. `vi` or `code --wait`); the file
/// name is appended as its last argument.
pub fn edit_file(
    path: &Path,
    sops_yaml: &Path,
    ids: &Identities,
    editor: &str,
) -> Result<EditOutcome, SecretsError> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SecretsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let rule = sops_config::creation_rule_for(sops_yaml, path)?;
    let recipients = rule
        .recipients
        .iter()
        .map(|r| age_layer::parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    let (before, policy) = match &existing {
        Some(bytes) => {
            let d = decrypt::decrypt_bytes(bytes, path, ids)?;
            (dotenv::emit(&d.lines), d.policy)
        }
        None => (Zeroizing::new(String::new()), rule.policy),
    };

    let after = run_editor(path, &before, editor)?;
    if after.as_str() == before.as_str() {
        tracing::info!(file = %path.display(), "no change; file left untouched");
        return Ok(EditOutcome::Unchanged);
    }
    let invalid = |source| SecretsError::EditedInvalid {
        file: path.to_path_buf(),
        source: Box::new(source),
    };
    let lines = dotenv::parse(&after, Path::new("edited content")).map_err(invalid)?;
    let encrypted =
        encrypt::encrypt_lines(&lines, &recipients, &policy, Path::new("edited content")).map_err(
            |e| match e {
                e @ (SecretsError::ReservedName { .. } | SecretsError::DuplicateName { .. }) => {
                    invalid(e)
                }
                other => other,
            },
        )?;
    write_atomically(path, encrypted.as_bytes())?;
    Ok(if existing.is_some() {
        EditOutcome::Updated
    } else {
        EditOutcome::Created
    })
}

/// A private directory holding the plaintext; zero-fills and removes it on drop.
struct PlainWorkspace {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

impl Drop for PlainWorkspace {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::metadata(&self.file) {
            if let Ok(mut f) = OpenOptions::new().write(true).open(&self.file) {
                let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
                let _ = f.write_all(&zeros).and_then(|_| f.sync_all());
            }
        }
        // The TempDir field removes the (now empty) directory after this.
        let _ = std::fs::remove_file(&self.file);
    }
}

fn run_editor(path: &Path, plain: &str, editor: &str) -> Result<Zeroizing<String>, SecretsError> {
    let editor_err = |reason: String| SecretsError::Editor {
        editor: editor.to_owned(),
        file: path.to_path_buf(),
        reason,
    };
    let dir = tempfile::Builder::new()
        .prefix("deployer-secrets-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| editor_err(format!("cannot create a private temporary directory: {e}")))?;
    let name = plain_name(path);
    let ws = PlainWorkspace {
        file: dir.path().join(name),
        _dir: dir,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&ws.file)
        .map_err(|e| editor_err(format!("cannot create the temporary file: {e}")))?;
    f.write_all(plain.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| editor_err(format!("cannot write the temporary file: {e}")))?;
    drop(f);

    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&ws.file)
        .status()
        .map_err(|e| editor_err(format!("cannot start it: {e}")))?;
    if !status.success() {
        return Err(editor_err(format!("it exited with {status}")));
    }
    let bytes = Zeroizing::new(
        std::fs::read(&ws.file)
            .map_err(|e| editor_err(format!("cannot read the edited file back: {e}")))?,
    );
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretsError::EditedInvalid {
        file: path.to_path_buf(),
        source: Box::new(SecretsError::NotUtf8 {
            file: PathBuf::from("edited content"),
        }),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// `test.enc.env` -> `test.env`, so editors recognise the syntax.
fn plain_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secrets.env".to_owned());
    match name.strip_suffix(".enc.env") {
        Some(stem) => format!("{stem}.env"),
        None => name,
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`. Keeps the
/// old file's permissions, or 0600 for a new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    let write_err = |source| SecretsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let mut tmp = tempfile::Builder::new()
        .prefix(".deployer-secrets-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}
