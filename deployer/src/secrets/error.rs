//! Errors of the secrets module. Every message names the file (or key source) involved and
//! says what the operator should do; none ever carries a secret value or key material.

use std::path::PathBuf;

/// Everything that can go wrong while loading keys, decrypting, encrypting or editing
/// SOPS dotenv files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    // ---- reading and parsing ----------------------------------------------------------
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}: the file is {len} bytes, larger than the {max}-byte limit for a credentials file"
    )]
    TooLarge {
        file: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("{file}: line {line} is {len} bytes, longer than the {max}-byte limit; keep such large values outside the credentials file")]
    LineTooLong {
        file: PathBuf,
        line: usize,
        len: usize,
        max: usize,
    },
    #[error("{file}: the file is not valid UTF-8; credentials files must be UTF-8 text")]
    NotUtf8 { file: PathBuf },
    #[error("{file}: the file is empty; it holds no SOPS-encrypted data (create it with `deployer secrets edit`)")]
    Empty { file: PathBuf },
    #[error("{file}: line {line} has no '='; every line must be NAME=VALUE or a # comment")]
    MissingEquals { file: PathBuf, line: usize },
    #[error("{file}: line {line} has an empty variable name before '='")]
    EmptyName { file: PathBuf, line: usize },
    #[error(
        "{file}: variable {name} is defined twice (lines {first} and {second}); keep only one"
    )]
    DuplicateName {
        file: PathBuf,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("{file}: variable {name} (line {line}) starts with `sops_`, a prefix reserved for SOPS metadata; rename it")]
    ReservedName {
        file: PathBuf,
        name: String,
        line: usize,
    },

    // ---- SOPS metadata ----------------------------------------------------------------
    #[error("{file}: no SOPS metadata (sops_mac, sops_lastmodified, sops_age__...) found: the file is not SOPS-encrypted; encrypt it with `deployer secrets edit` or `sops --encrypt`")]
    NotEncrypted { file: PathBuf },
    #[error("{file}: the SOPS metadata line `sops_mac` is missing, so the file cannot be verified; restore the file from version control or re-encrypt it")]
    MissingMac { file: PathBuf },
    #[error("{file}: the SOPS metadata line `{name}` is missing; restore the file from version control or re-encrypt it")]
    MissingMetadata { file: PathBuf, name: String },
    #[error("{file}: the SOPS metadata line `{name}` appears more than once (line {line}); restore the file from version control")]
    DuplicateMetadata {
        file: PathBuf,
        name: String,
        line: usize,
    },
    #[error("{file}: unknown SOPS metadata `{name}` (line {line}); the file may come from a newer sops: decrypt it with the sops CLI and report the version")]
    UnknownMetadata {
        file: PathBuf,
        name: String,
        line: usize,
    },
    #[error("{file}: invalid SOPS metadata `{name}`: {reason}")]
    InvalidMetadata {
        file: PathBuf,
        name: String,
        reason: String,
    },
    #[error("{file}: the encryption rule `{rule}` is not supported by this tool; re-encrypt the file with the default rule (unencrypted_suffix) or encrypted_regex, or use the sops CLI")]
    UnsupportedRule { file: PathBuf, rule: String },

    // ---- key types we do not handle --------------------------------------------------
    #[error("{file}: the file uses Shamir key groups (sops_key_groups / sops_shamir_threshold), which this tool does not support; decrypt it with the sops CLI, or re-encrypt it for plain age recipients (a .sops.yaml rule with `age:` and no key_groups, then `sops updatekeys`)")]
    ShamirKeyGroups { file: PathBuf },
    #[error("{file}: the data key is encrypted only for PGP keys; this tool uses age: add an age recipient to .sops.yaml and run `sops updatekeys` on the file")]
    PgpOnly { file: PathBuf },
    #[error("{file}: the data key is encrypted only for {services}; this tool uses age: add an age recipient to .sops.yaml and run `sops updatekeys` on the file")]
    CloudKmsOnly { file: PathBuf, services: String },
    #[error("post-quantum age keys are not supported ({what}); use an X25519 age key (identity AGE-SECRET-KEY-1..., recipient age1...), e.g. one made by `deployer secrets init`")]
    PostQuantumAge { what: String },
    #[error("age plugin keys are not supported ({what}); use an X25519 age key (identity AGE-SECRET-KEY-1..., recipient age1...), e.g. one made by `deployer secrets init`")]
    PluginAge { what: String },

    // ---- keys and decryption ------------------------------------------------------------
    #[error("no age identity found; looked in: {looked}. Set SOPS_AGE_KEY_FILE to your keys file, or create a key with `deployer secrets init`")]
    NoIdentity { looked: String },
    #[error("{location}: line {line} is not an age identity (expected AGE-SECRET-KEY-1...)")]
    BadIdentity { location: String, line: usize },
    #[error("SOPS_AGE_KEY_CMD failed ({reason}); run the command by hand to see why")]
    KeyCommand { reason: String },
    #[error("{file}: none of your {count} age identities (from {sources}) can open the data key; the file is encrypted for: {recipients}. Ask someone who can decrypt it to add your recipient (`deployer secrets init` prints it) to .sops.yaml and re-encrypt the file")]
    NoMatchingIdentity {
        file: PathBuf,
        count: usize,
        sources: String,
        recipients: String,
    },
    #[error("{file}: the age-encrypted data key for {recipient} is malformed ({reason}); restore the file from version control")]
    AgePayload {
        file: PathBuf,
        recipient: String,
        reason: String,
    },
    #[error("{file}: the decrypted data key is {len} bytes, expected 32; the file is corrupt")]
    BadDataKey { file: PathBuf, len: usize },
    #[error("{file}: the value of {name} (line {line}) is not a valid SOPS value ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]: {reason}")]
    MalformedValue {
        file: PathBuf,
        name: String,
        line: usize,
        reason: &'static str,
    },
    #[error("{file}: the value of {name} (line {line}) has type `{kind}`; dotenv files hold strings only")]
    UnsupportedValueType {
        file: PathBuf,
        name: String,
        line: usize,
        kind: String,
    },
    #[error("{file}: the value of {name} (line {line}) fails authentication: its ciphertext was altered or moved from another variable; refusing the file, restore it from version control")]
    TamperedValue {
        file: PathBuf,
        name: String,
        line: usize,
    },
    #[error("{file}: the encrypted comment on line {line} fails authentication: it was altered or moved; refusing the file, restore it from version control")]
    TamperedComment { file: PathBuf, line: usize },
    #[error("{file}: MAC mismatch: values were changed, added, dropped or reordered, or sops_lastmodified was altered, after the file was encrypted; refusing the file, restore it from version control")]
    MacMismatch { file: PathBuf },

    // ---- encryption -------------------------------------------------------------------
    #[error("no age recipients given; list at least one age1... recipient in .sops.yaml")]
    NoRecipients,
    #[error("`{recipient}` is not an X25519 age recipient (age1...): {reason}")]
    BadRecipient { recipient: String, reason: String },
    #[error("encryption failed: {reason}")]
    Encrypt { reason: String },

    // ---- .sops.yaml ---------------------------------------------------------------------
    #[error("{path}: invalid .sops.yaml: {reason}")]
    SopsConfig { path: PathBuf, reason: String },
    #[error("{config}: no creation rule matches {file}; add a creation_rules entry whose path_regex matches it, with `age:` recipients")]
    NoCreationRule { config: PathBuf, file: PathBuf },
    #[error(
        "{config}: the creation rule for {file} lists no age recipients; add `age: age1...` to it"
    )]
    NoAgeInRule { config: PathBuf, file: PathBuf },

    // ---- key generation, environments and editing ---------------------------------------
    #[error("{path} already exists; refusing to overwrite an age key (files encrypted for it would become unreadable). Use the existing key, or move the file away yourself")]
    KeyFileExists { path: PathBuf },
    #[error("`{env}` is not a valid environment name; use letters, digits, '-' and '_' only")]
    InvalidEnvName { env: String },
    #[error("{path}: credentials file for environment `{env}` not found; create it with `deployer secrets edit {env}`")]
    MissingEnvFile { path: PathBuf, env: String },
    #[error("editor `{editor}` failed: {reason}; {file} is unchanged")]
    Editor {
        editor: String,
        file: PathBuf,
        reason: String,
    },
    #[error("the edited content is not a valid dotenv file ({source}); {file} is unchanged, your edit was discarded")]
    EditedInvalid {
        file: PathBuf,
        #[source]
        source: Box<SecretsError>,
    },
}
