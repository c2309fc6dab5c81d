//! Errors of the device registry and of authentication. None of them ever carries a secret.

/// What can go wrong while managing or checking device credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid device id {0:?}: use 1-64 characters of [A-Za-z0-9._:-], or user/device for OwnTracks")]
    InvalidId(String),
    #[error(
        "device {0:?} already exists (use `ingest device rotate-secret` to issue a new secret)"
    )]
    AlreadyExists(String),
    #[error("no device {0:?} in the registry (see `ingest device list`)")]
    NotFound(String),
    #[error("hashing the secret failed: {0}")]
    Hash(String),
    #[error("the stored secret hash is malformed ({0}): rotate the device's secret")]
    CorruptHash(String),
    #[error("unknown account kind {0:?} in the registry (expected device or service)")]
    UnknownKind(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
