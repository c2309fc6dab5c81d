//! Database dumps in the env's Object Storage bucket (the state bucket, under
//! `<env>/db-dumps/`): where `db stop` leaves the data and `db start` finds it again.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use crate::contract::{STATE_BUCKET, STATE_ENDPOINT, STATE_REGION};
use crate::credentials::Creds;

#[derive(Debug, thiserror::Error)]
pub enum DumpStoreError {
    #[error("S3 credentials missing: {0} in credentials/<env>.enc.env")]
    MissingCreds(&'static str),
    #[error("Object Storage: {0}. Check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and that the bucket exists (`deployer bootstrap <env>`)")]
    Store(#[from] object_store::Error),
    #[error("local file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Dumps of one env.
pub struct DumpStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl DumpStore {
    /// The env's bucket. `DEPLOYER_S3_ENDPOINT` replaces OVH's endpoint (tests use a local S3).
    pub fn for_env(creds: &Creds, env: &str) -> Result<Self, DumpStoreError> {
        let endpoint =
            std::env::var("DEPLOYER_S3_ENDPOINT").unwrap_or_else(|_| STATE_ENDPOINT.to_owned());
        let key = creds
            .get("AWS_ACCESS_KEY_ID")
            .ok_or(DumpStoreError::MissingCreds("AWS_ACCESS_KEY_ID"))?;
        let secret = creds
            .get("AWS_SECRET_ACCESS_KEY")
            .ok_or(DumpStoreError::MissingCreds("AWS_SECRET_ACCESS_KEY"))?;
        Self::new(&endpoint, STATE_BUCKET, key, secret, env)
    }

    pub fn new(
        endpoint: &str,
        bucket: &str,
        access_key: &str,
        secret_key: &str,
        env: &str,
    ) -> Result<Self, DumpStoreError> {
        let store = AmazonS3Builder::new()
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(bucket)
            .with_region(STATE_REGION)
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key)
            .build()?;
        Ok(Self {
            store: Arc::new(store),
            prefix: format!("{env}/db-dumps"),
        })
    }

    /// A new dump's key, sortable by time: `<env>/db-dumps/<UTC yyyymmddThhmmssZ>.dump`.
    pub fn new_key(&self, unix_secs: u64) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(unix_secs as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{}/{:04}{:02}{:02}T{:02}{:02}{:02}Z.dump",
            self.prefix,
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// Uploads a local file (multipart for large dumps).
    pub async fn upload(&self, local: &Path, key: &str) -> Result<u64, DumpStoreError> {
        let io = |source| DumpStoreError::Io {
            path: local.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(local).await.map_err(io)?;
        let mut writer =
            object_store::buffered::BufWriter::new(self.store.clone(), ObjectPath::from(key));
        let n = tokio::io::copy(&mut file, &mut writer).await.map_err(io)?;
        writer.shutdown().await.map_err(io)?;
        Ok(n)
    }

    /// The newest dump's key, if any.
    pub async fn latest(&self) -> Result<Option<String>, DumpStoreError> {
        let prefix = ObjectPath::from(self.prefix.as_str());
        let mut list = self.store.list(Some(&prefix));
        let mut newest: Option<String> = None;
        while let Some(meta) = list.next().await {
            let key = meta?.location.to_string();
            if key.ends_with(".dump") && newest.as_deref().is_none_or(|n| key.as_str() > n) {
                newest = Some(key);
            }
        }
        Ok(newest)
    }

    /// Downloads `key` to a local file.
    pub async fn download(&self, key: &str, local: &Path) -> Result<u64, DumpStoreError> {
        let io = |source| DumpStoreError::Io {
            path: local.display().to_string(),
            source,
        };
        let mut out = tokio::fs::File::create(local).await.map_err(io)?;
        let mut stream = self.store.get(&ObjectPath::from(key)).await?.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        Ok(n)
    }
}
