//! The compose bundle rendered for one environment: the files of `compose/` the contract
//! lists, the `.env` built from the credentials and the Terraform outputs, and the database
//! CA. Rendering is pure; shipping it is the deploy command's job.

use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::contract::{
    BACKEND_SERVICE_ACCOUNT, COMPOSE_BUNDLE_FILES, COMPOSE_ENV_KEYS, DB_CA_CONTAINER_PATH,
    DB_CA_FILE, MAX_MQTT_SECRET_LEN, MIN_MQTT_SECRET_LEN, PROBE_DEVICE,
};
use crate::credentials::Creds;
use crate::terraform::TfOutputs;

/// Characters left as-is in a URL's user or password (RFC 3986 unreserved).
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const DEFAULT_BACKEND_REPLICAS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the compose bundle lacks {path}: is compose/ complete in this checkout?")]
    MissingFile { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the database of this environment is stopped: run `deployer db start <env>` first")]
    NoDatabase,
    #[error("{key} cannot go into .env: {why}")]
    BadValue { key: String, why: String },
    #[error("{0} is required: add it with `deployer secrets edit <env>`")]
    Missing(&'static str),
}

/// One file to place on the host, relative to the remote directory.
#[derive(Clone)]
pub struct BundleFile {
    pub path: String,
    pub content: Vec<u8>,
    /// 0o600 for files holding secrets.
    pub mode: u32,
    /// Holds secrets: never show its content, only that it changed.
    pub secret: bool,
}

impl std::fmt::Debug for BundleFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleFile")
            .field("path", &self.path)
            .field("len", &self.content.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Everything `deploy` writes to the host.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub files: Vec<BundleFile>,
}

/// How the ingest image reaches the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestImage {
    /// A pinned image the host pulls (`INGEST_IMAGE` in the env's credentials).
    Pull(String),
    /// Built on the host from this checkout (`git archive`), tagged with the commit.
    BuildOnHost { tag: String },
}

impl IngestImage {
    pub fn reference(&self) -> &str {
        match self {
            IngestImage::Pull(r) => r,
            IngestImage::BuildOnHost { tag } => tag,
        }
    }
}

fn check_value(key: &str, value: &str) -> Result<(), BundleError> {
    if value.contains(['\n', '\r']) {
        return Err(BundleError::BadValue {
            key: key.into(),
            why: "it contains a line break".into(),
        });
    }
    if value.contains('\'') {
        return Err(BundleError::BadValue {
            key: key.into(),
            why: "it contains a single quote".into(),
        });
    }
    Ok(())
}

/// The MQTT secrets of the accounts `ingest-migrate` ensures (the backend's service account,
/// the probe device) must pass the ingest's rules, or the one-shot would fail on the host; the
/// message never quotes the value.
fn check_mqtt_secret(key: &str, value: &str) -> Result<(), BundleError> {
    let bad = |why: String| BundleError::BadValue {
        key: key.into(),
        why,
    };
    let chars = value.chars().count();
    if chars < MIN_MQTT_SECRET_LEN {
        return Err(bad(format!(
            "it has {chars} characters, at least {MIN_MQTT_SECRET_LEN} are needed (generate one with `openssl rand -base64 32`, then `deployer secrets edit <env>`)"
        )));
    }
    if value.len() > MAX_MQTT_SECRET_LEN {
        return Err(bad(format!(
            "it is longer than {MAX_MQTT_SECRET_LEN} bytes (the broker refuses such passwords)"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace or control characters".into()));
    }
    Ok(())
}

fn pg_url(user: &str, password: &str, host: &str, port: u16, db: &str, extra: &str) -> String {
    format!(
        "postgresql://{}:{}@{host}:{port}/{}?sslmode=verify-full{extra}",
        utf8_percent_encode(user, USERINFO),
        utf8_percent_encode(password, USERINFO),
        utf8_percent_encode(db, USERINFO),
    )
}

/// The `.env` lines, in the contract's order. Values are single-quoted (literal for compose).
pub fn render_env(
    env: &str,
    creds: &Creds,
    out: &TfOutputs,
    ingest: &IngestImage,
) -> Result<String, BundleError> {
    let db = out.database.as_ref().ok_or(BundleError::NoDatabase)?;
    let need = |k: &'static str| creds.get(k).ok_or(BundleError::Missing(k));
    let mqtt_password = need("BACKEND_MQTT_PASSWORD")?;
    check_mqtt_secret("BACKEND_MQTT_PASSWORD", mqtt_password)?;
    let probe_password = need("TEST_DEVICE_PASSWORD")?;
    check_mqtt_secret("TEST_DEVICE_PASSWORD", probe_password)?;
    let jwks = creds
        .get("POWERSYNC_JWKS_URI")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("https://{}/.well-known/jwks.json", out.api_domain));
    let ps_url = pg_url(
        &db.powersync_user,
        &db.powersync_password,
        &db.host,
        db.port,
        &db.name,
        "",
    );
    let pairs: Vec<(&str, String)> = vec![
        ("ENV_NAME", env.to_owned()),
        ("API_DOMAIN", out.api_domain.clone()),
        ("POWERSYNC_DOMAIN", out.powersync_domain.clone()),
        ("MQTT_DOMAIN", out.mqtt_domain.clone()),
        ("ACME_EMAIL", need("ACME_EMAIL")?.to_owned()),
        ("BACKEND_IMAGE", need("BACKEND_IMAGE")?.to_owned()),
        (
            "BACKEND_REPLICAS",
            creds
                .get("BACKEND_REPLICAS")
                .unwrap_or(DEFAULT_BACKEND_REPLICAS)
                .to_owned(),
        ),
        ("INGEST_IMAGE", ingest.reference().to_owned()),
        (
            "DATABASE_URL",
            pg_url(
                &db.user,
                &db.password,
                &db.host,
                db.port,
                &db.name,
                &format!("&sslrootcert={DB_CA_CONTAINER_PATH}"),
            ),
        ),
        ("PS_DATA_SOURCE_URI", ps_url.clone()),
        ("PS_STORAGE_URI", ps_url),
        ("PS_JWKS_URI", jwks),
        ("POWERSYNC_DB_USER", db.powersync_user.clone()),
        ("BACKEND_MQTT_USERNAME", BACKEND_SERVICE_ACCOUNT.to_owned()),
        ("BACKEND_MQTT_PASSWORD", mqtt_password.to_owned()),
        ("TEST_DEVICE_ID", PROBE_DEVICE.to_owned()),
        ("TEST_DEVICE_PASSWORD", probe_password.to_owned()),
    ];
    debug_assert!(pairs
        .iter()
        .map(|(k, _)| *k)
        .eq(COMPOSE_ENV_KEYS.iter().copied()));
    let mut text = String::from("# Written by `deployer deploy`; do not edit on the host.\n");
    for (k, v) in pairs {
        check_value(k, &v)?;
        text.push_str(&format!("{k}='{v}'\n"));
    }
    Ok(text)
}

/// Renders the whole bundle from `compose_dir`.
pub fn render(
    compose_dir: &Path,
    env: &str,
    creds: &Creds,
    out: &TfOutputs,
    ingest: &IngestImage,
) -> Result<Bundle, BundleError> {
    let mut files = Vec::new();
    for rel in COMPOSE_BUNDLE_FILES {
        let path = compose_dir.join(rel);
        if !path.is_file() {
            return Err(BundleError::MissingFile { path });
        }
        let content = std::fs::read(&path).map_err(|source| BundleError::Io { path, source })?;
        files.push(BundleFile {
            path: (*rel).to_owned(),
            content,
            mode: 0o644,
            secret: false,
        });
    }
    let env_text = render_env(env, creds, out, ingest)?;
    files.push(BundleFile {
        path: ".env".into(),
        content: env_text.into_bytes(),
        mode: 0o600,
        secret: true,
    });
    let db = out.database.as_ref().ok_or(BundleError::NoDatabase)?;
    files.push(BundleFile {
        path: DB_CA_FILE.into(),
        content: db.ca_certificate.clone().into_bytes(),
        mode: 0o644,
        secret: false,
    });
    Ok(Bundle { files })
}

/// SHA-256 of a file's content, hex (compared with `sha256sum` on the host).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::tests::complete;
    use crate::terraform::outputs::{parse, tests::sample};

    #[test]
    fn env_file_has_every_contract_key_and_escaped_urls() {
        let mut doc = sample(true);
        doc["db_password"]["value"] = serde_json::json!("p@ss:w/rd#1 ");
        let out = parse(&doc.to_string()).unwrap();
        let text = render_env(
            "test",
            &complete(),
            &out,
            &IngestImage::Pull("ghcr.io/acco/ingest:1.0".into()),
        )
        .unwrap();
        for key in COMPOSE_ENV_KEYS {
            assert!(text.contains(&format!("\n{key}='")), "{key} in {text}");
        }
        assert!(text.contains("p%40ss%3Aw%2Frd%231%20@fake-db_host:20184/fake-db_name?sslmode=verify-full&sslrootcert=/run/secrets/db-ca.pem"), "{text}");
        assert!(text.contains("INGEST_IMAGE='ghcr.io/acco/ingest:1.0'"));
        assert!(text.contains("BACKEND_REPLICAS='2'"));
        assert!(text.contains("PS_JWKS_URI='https://fake-api_domain/.well-known/jwks.json'"));
        assert!(
            text.contains("POWERSYNC_DB_USER='fake-powersync_db_user'"),
            "{text}"
        );
        assert!(text.contains("BACKEND_MQTT_USERNAME='backend'"));
        assert!(text.contains("BACKEND_MQTT_PASSWORD='value-of-BACKEND_MQTT_PASSWORD'"));
        assert!(text.contains("TEST_DEVICE_ID='deployer-probe'"), "{text}");
        assert!(text.contains("TEST_DEVICE_PASSWORD='value-of-TEST_DEVICE_PASSWORD'"));
    }

    #[test]
    fn a_missing_or_weak_mqtt_secret_is_refused_without_showing_it() {
        let out = parse(&sample(true).to_string()).unwrap();
        let img = IngestImage::Pull("x".into());
        for key in ["BACKEND_MQTT_PASSWORD", "TEST_DEVICE_PASSWORD"] {
            let with = |password: Option<&str>| {
                let mut pairs: Vec<(String, String)> = complete()
                    .names()
                    .filter(|n| *n != key)
                    .map(|n| (n.to_owned(), complete().get(n).unwrap_or("").to_owned()))
                    .collect();
                if let Some(p) = password {
                    pairs.push((key.into(), p.into()));
                }
                render_env("test", &Creds::from_pairs(pairs), &out, &img)
            };
            let err = with(None).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{key} is required")) && err.contains("secrets edit"),
                "{err}"
            );
            for (value, want) in [
                ("tooShort-123", "at least 24"),
                ("long-enough-but has-a-space-in-it", "whitespace"),
                (&"x".repeat(300), "longer than 256"),
            ] {
                let err = with(Some(value)).unwrap_err().to_string();
                assert!(err.contains(key) && err.contains(want), "{err}");
                assert!(!err.contains(value), "the value leaked: {err}");
            }
            assert!(with(Some("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Cg==")).is_ok());
        }
    }

    #[test]
    fn broken_values_and_stopped_database_are_refused() {
        let out = parse(&sample(false).to_string()).unwrap();
        let img = IngestImage::Pull("x".into());
        assert!(matches!(
            render_env("test", &complete(), &out, &img),
            Err(BundleError::NoDatabase)
        ));
        let out = parse(&sample(true).to_string()).unwrap();
        let mut pairs: Vec<(String, String)> = complete()
            .names()
            .map(|n| (n.to_owned(), complete().get(n).unwrap_or("").to_owned()))
            .collect();
        pairs.push(("ACME_EMAIL".into(), "ops@x'y".into()));
        let err = render_env("test", &Creds::from_pairs(pairs), &out, &img).unwrap_err();
        assert!(err.to_string().contains("ACME_EMAIL"), "{err}");
    }

    #[test]
    fn the_repositorys_compose_bundle_renders() {
        let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose");
        let out = parse(&sample(true).to_string()).unwrap();
        let b = render(
            &compose,
            "test",
            &complete(),
            &out,
            &IngestImage::Pull("i:1".into()),
        )
        .unwrap();
        let paths: Vec<&str> = b.files.iter().map(|f| f.path.as_str()).collect();
        for f in COMPOSE_BUNDLE_FILES {
            assert!(paths.contains(f), "{f}");
        }
        let env = b.files.iter().find(|f| f.path == ".env").unwrap();
        assert!(env.secret && env.mode == 0o600);
    }

    #[test]
    fn missing_compose_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let out = parse(&sample(true).to_string()).unwrap();
        let err = render(
            tmp.path(),
            "test",
            &complete(),
            &out,
            &IngestImage::Pull("x".into()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("docker-compose.yml"), "{err}");
    }
}
