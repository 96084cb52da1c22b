//! Building a backend from a URL: `s3://bucket/prefix`, `file:///dir`,
//! `memory://`.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ObjectStore, RetryConfig};
use smgr_api::{Error, Result};

use crate::{ObjectOptions, ObjectSmgr};

/// Connection settings for an S3 store, beyond what the URL says. Anything
/// left `None` comes from the environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`…). `Debug` never
/// shows the secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// An endpoint other than AWS (`http://127.0.0.1:8333` for SeaweedFS).
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP (local test servers).
    pub allow_http: bool,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible
    /// servers want.
    pub path_style: bool,
    /// Retries of transient failures (5xx, timeouts, resets), with backoff.
    pub max_retries: usize,
    /// Give up retrying after this long.
    pub retry_timeout: Duration,
    /// Take credentials from the AWS SDK's default chain (profiles, SSO,
    /// IMDS…) instead of the keys above or `object_store`'s own lookup.
    #[cfg(feature = "aws-sdk")]
    pub aws_sdk_credentials: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("path_style", &self.path_style)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .finish()
    }
}

impl StoreOptions {
    /// Defaults for interactive use and tests: 4 retries within 15 s
    /// (`object_store`'s own default, 10 retries over up to 3 minutes, is
    /// too patient for a tool a person waits on).
    pub fn new() -> Self {
        StoreOptions {
            max_retries: 4,
            retry_timeout: Duration::from_secs(15),
            ..StoreOptions::default()
        }
    }
}

impl ObjectSmgr {
    /// A backend for `url`: `s3://bucket[/prefix]` (with `store`
    /// settings and the environment), `file:///dir[/prefix]` (a local
    /// directory; conditional writes off, since it cannot do them), or
    /// `memory://` (for tests).
    pub fn from_url(url: &str, store: &StoreOptions, mut options: ObjectOptions) -> Result<Self> {
        let (object_store, prefix, conditional) = store_from_url(url, store)?;
        options.conditional_writes &= conditional;
        ObjectSmgr::new(object_store, &prefix, options)
    }
}

/// The store and key prefix a URL names, and whether the store can do
/// conditional writes (a local directory cannot). For wrapping the store
/// (for example in [`crate::testing::FaultyStore`]) before building the
/// backend with [`ObjectSmgr::new`].
pub fn store_from_url(
    url: &str,
    store: &StoreOptions,
) -> Result<(Arc<dyn ObjectStore>, String, bool)> {
    {
        let bad = |reason: &'static str| Error::InvalidPath {
            input: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|_| {
            bad("not a URL (expected s3://bucket/prefix, file:///dir or memory://)")
        })?;
        let prefix = parsed.path().trim_matches('/').to_owned();
        let object_store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" => {
                let bucket = parsed
                    .host_str()
                    .ok_or_else(|| bad("an s3 URL needs a bucket: s3://bucket/prefix"))?;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_allow_http(store.allow_http)
                    .with_virtual_hosted_style_request(!store.path_style)
                    .with_retry(RetryConfig {
                        max_retries: store.max_retries,
                        retry_timeout: store.retry_timeout,
                        ..RetryConfig::default()
                    });
                if let Some(endpoint) = &store.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &store.region {
                    builder = builder.with_region(region);
                }
                if let Some(key) = &store.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &store.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                #[cfg(feature = "aws-sdk")]
                if store.aws_sdk_credentials {
                    builder = builder
                        .with_credentials(Arc::new(crate::aws_sdk::SdkCredentials::default()));
                }
                // The builder's error text names the setting, not its value.
                Arc::new(builder.build().map_err(|err| {
                    Error::io(
                        "configure S3 store for",
                        url,
                        std::io::Error::other(err.to_string()),
                    )
                })?)
            }
            "file" => {
                let root = parsed
                    .to_file_path()
                    .map_err(|()| bad("not a local file URL"))?;
                std::fs::create_dir_all(&root)
                    .map_err(|err| Error::io("create", root.display().to_string(), err))?;
                let local = LocalFileSystem::new_with_prefix(&root).map_err(|err| {
                    Error::io(
                        "open",
                        root.display().to_string(),
                        std::io::Error::other(err.to_string()),
                    )
                })?;
                return Ok((Arc::new(local), String::new(), false));
            }
            "memory" => Arc::new(InMemory::new()),
            _ => return Err(bad("unsupported scheme (expected s3, file or memory)")),
        };
        Ok((object_store, prefix, true))
    }
}
