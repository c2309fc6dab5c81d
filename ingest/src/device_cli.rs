//! `ingest device add|list|disable|enable|rotate-secret`: account administration from the
//! command line. Applies the schema first. A new secret goes to standard output once and
//! nowhere else (never to the log).
//!
//! Also [`ensure_account`]: the idempotent creation of an account whose secret is chosen by
//! the operator (kept in the deployment's credentials), which `ingest migrate` runs at every
//! deploy for the accounts a deployment needs ([`SERVICE_ACCOUNT`]: the backend's service
//! account; [`PROBE_DEVICE`]: the device `deployer verify` publishes as). That secret is never
//! printed, logged, or put in an error.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::auth::{is_valid_account_id, verify_secret, AuthError, Kind, Registry, MAX_SECRET_LEN};
use crate::config::{redact_url, DeviceAction, DeviceArgs};

/// An account `ingest migrate` keeps in the registry, and where its id and secret come from.
/// The secret is deliberately not a command-line option: a secret in the process arguments is
/// visible to every local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRole {
    /// The kind the account must have (an account of the other kind is never converted).
    pub kind: Kind,
    /// How messages name it, e.g. "service account".
    pub label: &'static str,
    /// The option naming the account, and its environment variable.
    pub id_flag: &'static str,
    pub id_env: &'static str,
    /// The environment variable holding the secret, and the option naming a file with it.
    pub secret_env: &'static str,
    pub file_flag: &'static str,
}

/// The backend's service account (`--service-account`).
pub const SERVICE_ACCOUNT: AccountRole = AccountRole {
    kind: Kind::Service,
    label: "service account",
    id_flag: "--service-account",
    id_env: "INGEST_SERVICE_ACCOUNT",
    secret_env: SERVICE_SECRET_ENV,
    file_flag: "--service-account-secret-file",
};

/// The probe device a deployment check publishes as, to its own topic only
/// (`--probe-device`).
pub const PROBE_DEVICE: AccountRole = AccountRole {
    kind: Kind::Device,
    label: "probe device",
    id_flag: "--probe-device",
    id_env: "INGEST_PROBE_DEVICE",
    secret_env: PROBE_SECRET_ENV,
    file_flag: "--probe-device-secret-file",
};

/// Environment variable holding the secret of the service account `ingest migrate` ensures
/// (`--service-account`), when no `--service-account-secret-file` is given.
pub const SERVICE_SECRET_ENV: &str = "INGEST_SERVICE_ACCOUNT_SECRET";

/// Environment variable holding the secret of the probe device `ingest migrate` ensures
/// (`--probe-device`), when no `--probe-device-secret-file` is given.
pub const PROBE_SECRET_ENV: &str = "INGEST_PROBE_DEVICE_SECRET";

/// Shortest secret accepted for an ensured account (a generated one has 43 characters;
/// `openssl rand -base64 32` gives 44).
pub const MIN_ENSURED_SECRET_LEN: usize = 24;

/// What [`ensure_account`] did to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The account did not exist and was created.
    Created,
    /// The account existed with another secret (or a corrupt hash): its hash was replaced.
    /// Sessions that logged in with the old secret are closed by the broker within seconds.
    SecretReplaced,
    /// The account existed with this very secret: nothing was written.
    Unchanged,
}

impl std::fmt::Display for Ensured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ensured::Created => "created",
            Ensured::SecretReplaced => "secret replaced",
            Ensured::Unchanged => "unchanged",
        })
    }
}

/// The outcome of [`ensure_account`]: what was done, and whether the account may log in (a
/// disabled account stays disabled: an operator disabled it on purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnsureReport {
    pub outcome: Ensured,
    pub enabled: bool,
}

/// Why an account could not be ensured. No variant carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    #[error("the secret given for {label} {id:?} is refused: {why}")]
    BadSecret {
        label: &'static str,
        id: String,
        why: String,
    },
    #[error("{id:?} is a {found} account, not a {wanted} account: choose another id for the {label} (see `ingest device list`)")]
    WrongKind {
        label: &'static str,
        id: String,
        found: Kind,
        wanted: Kind,
    },
    #[error("account {0:?} changed three times while being updated: run the command again")]
    Contended(String),
    #[error(transparent)]
    Registry(#[from] AuthError),
}

/// Refuses a secret that is too short, too long for a login, or has whitespace or control
/// characters (usually a copy-and-paste accident). The message never quotes the secret.
pub fn check_secret(role: &AccountRole, id: &str, secret: &str) -> Result<(), EnsureError> {
    let bad = |why: String| EnsureError::BadSecret {
        label: role.label,
        id: id.to_owned(),
        why,
    };
    let chars = secret.chars().count();
    if chars < MIN_ENSURED_SECRET_LEN {
        return Err(bad(format!(
            "{chars} characters, at least {MIN_ENSURED_SECRET_LEN} are needed (generate one with `openssl rand -base64 32`)"
        )));
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(bad(format!(
            "{} bytes, the broker refuses passwords longer than {MAX_SECRET_LEN}",
            secret.len()
        )));
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "it contains whitespace or control characters (a stray space or line break?)".into(),
        ));
    }
    Ok(())
}

/// Creates the account `id` of the role's kind with `secret`, or brings an existing one to
/// that secret. Idempotent: with the same secret a second run writes nothing (so connected
/// sessions are not disturbed). Refuses to turn an account of the other kind into this one.
/// Does not enable a disabled account.
pub async fn ensure_account(
    registry: &Registry,
    role: &AccountRole,
    id: &str,
    secret: &str,
) -> Result<EnsureReport, EnsureError> {
    if !is_valid_account_id(id) {
        return Err(AuthError::InvalidId(id.to_owned()).into());
    }
    check_secret(role, id, secret)?;
    for _ in 0..3 {
        match registry.credentials(id).await? {
            None => match registry.add_with_secret(id, role.kind, secret).await {
                Ok(()) => {
                    return Ok(EnsureReport {
                        outcome: Ensured::Created,
                        enabled: true,
                    })
                }
                // Created by someone else in between: look again.
                Err(AuthError::AlreadyExists(_)) => continue,
                Err(e) => return Err(e.into()),
            },
            Some(stored) if stored.kind != role.kind => {
                return Err(EnsureError::WrongKind {
                    label: role.label,
                    id: id.to_owned(),
                    found: stored.kind,
                    wanted: role.kind,
                })
            }
            Some(stored) => {
                let same = {
                    let (s, h) = (secret.to_owned(), stored.secret_hash.clone());
                    match tokio::task::spawn_blocking(move || verify_secret(&s, &h))
                        .await
                        .map_err(AuthError::from)?
                    {
                        Ok(same) => same,
                        // A corrupt stored hash is repaired by replacing it.
                        Err(AuthError::CorruptHash(_)) => false,
                        Err(e) => return Err(e.into()),
                    }
                };
                if same {
                    return Ok(EnsureReport {
                        outcome: Ensured::Unchanged,
                        enabled: stored.enabled,
                    });
                }
                if registry
                    .replace_secret_if(id, &stored.secret_hash, secret)
                    .await?
                {
                    return Ok(EnsureReport {
                        outcome: Ensured::SecretReplaced,
                        enabled: stored.enabled,
                    });
                }
            }
        }
    }
    Err(EnsureError::Contended(id.to_owned()))
}

/// The role's secret: from `file` (one trailing line break removed), else from its
/// environment variable; `None` when neither is set. Errors never show the secret.
pub fn read_secret(role: &AccountRole, file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let from_env = std::env::var(role.secret_env)
        .ok()
        .filter(|v| !v.is_empty());
    match file {
        Some(path) => {
            if from_env.is_some() {
                anyhow::bail!(
                    "the {} secret is given twice ({} and {}): keep one",
                    role.label,
                    role.secret_env,
                    role.file_flag
                );
            }
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read the {} secret file {} (it must be a readable UTF-8 text file)",
                    role.label,
                    path.display()
                )
            })?;
            let secret = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            Ok(Some(secret.to_owned()))
        }
        None => Ok(from_env),
    }
}

/// The account to ensure for `role` from the command line (`id`, `file`) and the environment:
/// both the id and a secret, or neither. Every check that needs no database is done here, so
/// that `ingest migrate` refuses bad input before it touches anything.
pub fn requested_account(
    role: &AccountRole,
    id: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<Option<(String, String)>> {
    let secret = read_secret(role, file)?;
    match (id.filter(|s| !s.is_empty()), secret) {
        (Some(id), Some(secret)) => {
            if !is_valid_account_id(&id) {
                return Err(AuthError::InvalidId(id).into());
            }
            check_secret(role, &id, &secret)?;
            Ok(Some((id, secret)))
        }
        (Some(id), None) => anyhow::bail!(
            "{} {id:?} has no secret: set {} or {}",
            role.label,
            role.secret_env,
            role.file_flag
        ),
        (None, Some(_)) => anyhow::bail!(
            "a {} secret is set but no account: set {} ({})",
            role.label,
            role.id_flag,
            role.id_env
        ),
        (None, None) => Ok(None),
    }
}

/// Runs one administration command, writing its answer to `out`.
pub async fn run(args: DeviceArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = &args.db;
    let pool = crate::db::pool(&db.database_url, db.database_ca.as_deref(), 1)?;
    {
        let mut client = pool.get().await.with_context(|| {
            format!(
                "cannot connect to {}: is the database up and the URL right?",
                redact_url(&db.database_url)
            )
        })?;
        let opts = crate::schema::SchemaOptions {
            chunk_interval: db.chunk_interval,
        };
        crate::schema::migrate(&mut client, &opts)
            .await
            .context("applying the database schema")?;
    }
    let registry = Registry::new(pool);
    match args.action {
        DeviceAction::Add { id, service } => {
            let kind = if service { Kind::Service } else { Kind::Device };
            let secret = registry
                .add(&id, kind)
                .await
                .with_context(|| format!("cannot add {kind} {id:?}"))?;
            writeln!(out, "added {kind} {id}")?;
            writeln!(out, "secret: {secret}")?;
            writeln!(out, "(shown only now: give it to the {kind} as its MQTT password; it cannot be read back)")?;
        }
        DeviceAction::List => {
            let devices = registry.list().await.context("cannot list accounts")?;
            writeln!(
                out,
                "{:<40} {:<8} {:<8} {:<25} LAST SEEN",
                "ID", "KIND", "ENABLED", "CREATED"
            )?;
            for d in &devices {
                let seen = d
                    .last_seen_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                writeln!(
                    out,
                    "{:<40} {:<8} {:<8} {:<25} {seen}",
                    d.device_id,
                    d.kind,
                    d.enabled,
                    d.created_at.to_rfc3339()
                )?;
            }
            writeln!(out, "{} account(s)", devices.len())?;
        }
        DeviceAction::Disable { id } => {
            registry
                .set_enabled(&id, false)
                .await
                .with_context(|| format!("cannot disable {id:?}"))?;
            writeln!(out, "disabled {id} (its sessions close within seconds)")?;
        }
        DeviceAction::Enable { id } => {
            registry
                .set_enabled(&id, true)
                .await
                .with_context(|| format!("cannot enable {id:?}"))?;
            writeln!(out, "enabled {id}")?;
        }
        DeviceAction::RotateSecret { id } => {
            let secret = registry
                .rotate(&id)
                .await
                .with_context(|| format!("cannot rotate the secret of {id:?}"))?;
            writeln!(out, "new secret for {id}: {secret}")?;
            writeln!(
                out,
                "(shown only now; sessions using the old secret close within seconds)"
            )?;
        }
    }
    Ok(())
}
