//! SOPS dotenv + age, in-process: decrypt and encrypt credentials files in the format of
//! getsops/sops (3.7 to 3.11), find the operator's age keys like sops does, and support the
//! `deployer secrets init|edit` commands.
//!
//! Map of the module (data flows top to bottom when decrypting):
//! - `identities`: where age keys come from (`SOPS_AGE_KEY*`, default keys file).
//! - `dotenv`: the line syntax; `metadata`: the `sops_*` lines and what they allow.
//! - `age_layer`: the data key, age-encrypted per recipient (armored).
//! - `cipher`: AES-256-GCM `ENC[...]` values; `rules`: which values are encrypted;
//!   `mac`: the SHA-512 MAC; `timestamp`: `sops_lastmodified`.
//! - `decrypt` / `encrypt`: the two pipelines; `values`: the `Secrets` result.
//! - `sops_config`: `.sops.yaml` creation rules; `keygen`: `init`; `edit`: `edit`.
//!
//! Security stance: a file is used only if every encrypted value authenticates and the MAC
//! matches; errors and `Debug` output never contain values or key material. Like sops, the
//! MAC does not cover variable names, comments or empty values, so callers should read
//! only the variables they expect (`Secrets::get`), never export everything blindly.

mod age_layer;
mod cipher;
mod decrypt;
mod dotenv;
mod edit;
mod encrypt;
mod error;
mod identities;
mod keygen;
mod mac;
mod metadata;
mod rules;
mod sops_config;
mod timestamp;
mod values;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use edit::{edit_file, EditOutcome};
pub use error::SecretsError;
pub use identities::{Identities, KeyLookup, DEFAULT_KEYS_SUBPATH};
pub use keygen::init_key;
pub use rules::{CryptRule, Policy, DEFAULT_UNENCRYPTED_SUFFIX};
pub use sops_config::{creation_rule_for, recipients_for, CreationRule};
pub use values::Secrets;

/// Name of the shared credentials file in a credentials directory.
pub const COMMON_FILE: &str = "common.enc.env";

/// Loads the operator's age identities from the environment, like sops.
pub fn load_identities() -> Result<Identities, SecretsError> {
    KeyLookup::from_env().load()
}

/// Decrypts and verifies a SOPS dotenv file.
pub fn decrypt_file(path: &Path, ids: &Identities) -> Result<Secrets, SecretsError> {
    let bytes = read(path)?;
    decrypt::decrypt_bytes(&bytes, path, ids).map(decrypt::Decrypted::into_secrets)
}

/// Decrypts and verifies SOPS dotenv content (errors name it `<input>`).
pub fn decrypt_str(content: &str, ids: &Identities) -> Result<Secrets, SecretsError> {
    decrypt::decrypt_bytes(content.as_bytes(), Path::new("<input>"), ids)
        .map(decrypt::Decrypted::into_secrets)
}

/// Decrypts a file back to plaintext dotenv text, comments included (what `sops -d` prints).
pub fn decrypt_to_dotenv(path: &Path, ids: &Identities) -> Result<Zeroizing<String>, SecretsError> {
    let bytes = read(path)?;
    decrypt::decrypt_bytes(&bytes, path, ids).map(|d| dotenv::emit(&d.lines))
}

/// common.enc.env then <env>.enc.env (env wins); a missing env file is an error naming it.
/// A missing common file is allowed.
pub fn load_env(
    credentials_dir: &Path,
    env: &str,
    ids: &Identities,
) -> Result<Secrets, SecretsError> {
    let env_file = env_file(credentials_dir, env)?;
    if !env_file.is_file() {
        return Err(SecretsError::MissingEnvFile {
            path: env_file,
            env: env.to_owned(),
        });
    }
    let common = credentials_dir.join(COMMON_FILE);
    let base = if common.is_file() && common != env_file {
        decrypt_file(&common, ids)?
    } else {
        tracing::debug!(path = %common.display(), "no common credentials file");
        Secrets::new()
    };
    Ok(base.merge(decrypt_file(&env_file, ids)?))
}

/// `<credentials_dir>/<env>.enc.env`, refusing names that could escape the directory.
pub fn env_file(credentials_dir: &Path, env: &str) -> Result<PathBuf, SecretsError> {
    let valid = !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(SecretsError::InvalidEnvName {
            env: env.to_owned(),
        });
    }
    Ok(credentials_dir.join(format!("{env}.enc.env")))
}

/// Encrypts plaintext dotenv for age recipients (`age1...`) with the default rule
/// (everything but `*_unencrypted` and empty values encrypted, comments too).
pub fn encrypt_dotenv(plain: &str, recipients: &[String]) -> Result<String, SecretsError> {
    encrypt_dotenv_with(plain, recipients, &Policy::default())
}

/// Encrypts plaintext dotenv for age recipients under an explicit policy (e.g. the one
/// `creation_rule_for` returns).
pub fn encrypt_dotenv_with(
    plain: &str,
    recipients: &[String],
    policy: &Policy,
) -> Result<String, SecretsError> {
    let label = Path::new("<plaintext>");
    let recipients = recipients
        .iter()
        .map(|r| age_layer::parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    let lines = dotenv::parse(plain, label)?;
    encrypt::encrypt_lines(&lines, &recipients, policy, label)
}

/// Decrypts one armored age file (the layer that protects a SOPS data key) with `ids`.
pub fn open_age_armored(
    armored: &str,
    ids: &Identities,
) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    age_layer::open_armored(armored, ids).map_err(|e| match e {
        age_layer::OpenError::NoMatch => SecretsError::NoMatchingIdentity {
            file: PathBuf::from("<age payload>"),
            count: ids.len(),
            sources: ids.sources(),
            recipients: "unknown".to_owned(),
        },
        age_layer::OpenError::Malformed(reason) => SecretsError::AgePayload {
            file: PathBuf::from("<age payload>"),
            recipient: "unknown".to_owned(),
            reason,
        },
    })
}

fn read(path: &Path) -> Result<Vec<u8>, SecretsError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if len > dotenv::MAX_FILE_BYTES {
        return Err(SecretsError::TooLarge {
            file: path.to_path_buf(),
            len,
            max: dotenv::MAX_FILE_BYTES,
        });
    }
    std::fs::read(path).map_err(|source| SecretsError::Read {
        path: path.to_path_buf(),
        source,
    })
}
