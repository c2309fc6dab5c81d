//! Finding the operator's age identities the way sops does: `SOPS_AGE_KEY` (identities
//! separated by newlines or spaces), `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY_CMD` (run with
//! `sh -c`, stdout holds the keys) and the default `$XDG_CONFIG_HOME/sops/age/keys.txt`
//! (`~/.config/sops/age/keys.txt`). Every source that is set is read and the identities
//! are pooled. Only X25519 identities are supported.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

use super::error::SecretsError;

/// Where sops keeps the keys under the user's config directory.
pub const DEFAULT_KEYS_SUBPATH: &str = "sops/age/keys.txt";

/// The age identities available to decrypt, with the places they came from.
#[derive(Clone, Default)]
pub struct Identities {
    keys: Vec<age::x25519::Identity>,
    /// Human-readable sources (env var names, paths), for error messages.
    sources: Vec<String>,
}

impl Identities {
    /// Parses identities from the text of a keys file (or `SOPS_AGE_KEY`). Blank lines and
    /// `#` comments are skipped; with `several_per_line` each whitespace-separated word of a
    /// line is an identity (as sops allows in `SOPS_AGE_KEY`). `location` names the source
    /// in errors; errors never contain key material.
    pub fn parse(text: &str, location: &str, several_per_line: bool) -> Result<Self, SecretsError> {
        let mut keys = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = if several_per_line {
                line.split_whitespace().collect()
            } else {
                vec![line]
            };
            for word in words {
                keys.push(parse_identity(word, location, index + 1)?);
            }
        }
        let sources = if keys.is_empty() {
            Vec::new()
        } else {
            vec![location.to_owned()]
        };
        Ok(Self { keys, sources })
    }

    /// Identities from a keys file.
    pub fn from_file(path: &Path) -> Result<Self, SecretsError> {
        let text = read_key_file(path)?;
        Self::parse(&text, &path.display().to_string(), false)
    }

    /// Wraps already-parsed identities.
    pub fn from_identities(keys: Vec<age::x25519::Identity>, source: &str) -> Self {
        Self {
            sources: vec![source.to_owned()],
            keys,
        }
    }

    /// Adds `other`'s identities after ours.
    pub fn extend(&mut self, other: Identities) {
        self.keys.extend(other.keys);
        self.sources.extend(other.sources);
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there is no identity.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public recipients of the identities (`age1...`).
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Where the identities came from, comma separated.
    pub fn sources(&self) -> String {
        if self.sources.is_empty() {
            "nowhere".to_owned()
        } else {
            self.sources.join(", ")
        }
    }

    pub(crate) fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k as &dyn age::Identity)
    }
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.keys.len())
            .field("sources", &self.sources)
            .finish()
    }
}

fn parse_identity(
    word: &str,
    location: &str,
    line: usize,
) -> Result<age::x25519::Identity, SecretsError> {
    if word.starts_with("AGE-PLUGIN-") {
        return Err(SecretsError::PluginAge {
            what: format!("identity on line {line} of {location}"),
        });
    }
    if word.starts_with("AGE-SECRET-KEY-PQ-") {
        return Err(SecretsError::PostQuantumAge {
            what: format!("identity on line {line} of {location}"),
        });
    }
    word.parse::<age::x25519::Identity>()
        .map_err(|_| SecretsError::BadIdentity {
            location: location.to_owned(),
            line,
        })
}

fn read_key_file(path: &Path) -> Result<Zeroizing<String>, SecretsError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| SecretsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The key sources to consult; `from_env` fills it from the process environment, tests and
/// callers may fill it by hand.
#[derive(Clone, Debug, Default)]
pub struct KeyLookup {
    /// `SOPS_AGE_KEY`: identities inline.
    pub age_key: Option<Zeroizing<String>>,
    /// `SOPS_AGE_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY_CMD`, run with `sh -c`.
    pub key_cmd: Option<String>,
    /// `XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `HOME`, for `~/.config` when `XDG_CONFIG_HOME` is unset.
    pub home: Option<PathBuf>,
}

impl KeyLookup {
    /// Reads the sops variables, `XDG_CONFIG_HOME` and `HOME`; empty variables count as unset.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            age_key: var("SOPS_AGE_KEY").map(Zeroizing::new),
            key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
            key_cmd: var("SOPS_AGE_KEY_CMD"),
            xdg_config_home: var("XDG_CONFIG_HOME").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
        }
    }

    /// The default keys file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
    /// `$HOME/.config/sops/age/keys.txt`.
    pub fn default_keys_file(&self) -> Option<PathBuf> {
        let config = match (&self.xdg_config_home, &self.home) {
            (Some(xdg), _) if xdg.is_absolute() => xdg.clone(),
            (_, Some(home)) => home.join(".config"),
            _ => return None,
        };
        Some(config.join(DEFAULT_KEYS_SUBPATH))
    }

    /// Loads every configured source. A source that is set but broken (unreadable file,
    /// failing command, malformed key) is an error; nothing found at all is an error that
    /// lists where we looked.
    pub fn load(&self) -> Result<Identities, SecretsError> {
        let mut ids = Identities::default();
        let mut looked = Vec::new();
        match &self.age_key {
            Some(text) => ids.extend(Identities::parse(text, "SOPS_AGE_KEY", true)?),
            None => looked.push("SOPS_AGE_KEY (unset)".to_owned()),
        }
        match &self.key_file {
            Some(path) => {
                let text = read_key_file(path)?;
                let location = format!("SOPS_AGE_KEY_FILE={}", path.display());
                ids.extend(Identities::parse(&text, &location, false)?);
            }
            None => looked.push("SOPS_AGE_KEY_FILE (unset)".to_owned()),
        }
        match &self.key_cmd {
            Some(cmd) => {
                let text = run_key_command(cmd)?;
                ids.extend(Identities::parse(&text, "SOPS_AGE_KEY_CMD", false)?);
            }
            None => looked.push("SOPS_AGE_KEY_CMD (unset)".to_owned()),
        }
        match self.default_keys_file() {
            Some(path) if path.exists() => ids.extend(Identities::from_file(&path)?),
            Some(path) => looked.push(format!("{} (missing)", path.display())),
            None => {
                looked.push("default keys file (neither XDG_CONFIG_HOME nor HOME set)".to_owned())
            }
        }
        if ids.is_empty() {
            return Err(SecretsError::NoIdentity {
                looked: looked.join(", "),
            });
        }
        tracing::debug!(count = ids.len(), sources = %ids.sources(), "loaded age identities");
        Ok(ids)
    }
}

fn run_key_command(cmd: &str) -> Result<Zeroizing<String>, SecretsError> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| SecretsError::KeyCommand {
            reason: format!("cannot start sh: {e}"),
        })?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(SecretsError::KeyCommand {
            reason: format!("it exited with {}", out.status),
        });
    }
    String::from_utf8(stdout.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::KeyCommand {
            reason: "its output is not UTF-8".to_owned(),
        })
}

/// Generates a new X25519 identity; returns it with its recipient.
pub(crate) fn generate() -> (Zeroizing<String>, String) {
    let id = age::x25519::Identity::generate();
    let secret = Zeroizing::new(id.to_string().expose_secret().to_owned());
    (secret, id.to_public().to_string())
}
