//! Building a store from a URL, the way the `object_store` ecosystem does
//! it: [`ObjectStoreScheme::parse`] decides the kind of store and the key
//! prefix (percent-decoded once, as `object_store` does), and the kind's
//! builder reads its settings from the environment (`from_env`: `AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), then from the URL, then from what the caller set
//! explicitly in [`StoreOptions`]. Nothing the environment set is replaced
//! by a default of ours; one retry layer, `object_store`'s own, with the
//! limits of [`StoreOptions`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};
use smgr_api::{Error, Result};

use crate::{ObjectOptions, ObjectSmgr};

/// Connection settings beyond what the URL and the environment say.
///
/// Where a setting comes from, later ones winning: the environment as
/// `object_store` reads it (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`,
/// `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`…),
/// then the URL, then [`options`](Self::options), then the shortcuts
/// (`endpoint`, `region` and the keys, for S3). A field left at its
/// default changes nothing. `Debug` never shows a secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct StoreOptions {
    /// S3: an endpoint other than AWS (`http://127.0.0.1:8333` for
    /// SeaweedFS). An `http://` endpoint given here is allowed plain HTTP
    /// unless `aws_allow_http` was set elsewhere; one on a host that is
    /// not loopback gets a warning.
    pub endpoint: Option<String>,
    /// S3: the region.
    pub region: Option<String>,
    /// S3: access key id.
    pub access_key_id: Option<String>,
    /// S3: secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP (local test servers).
    pub allow_http: bool,
    /// S3: path-style addressing (`endpoint/bucket/key`), as most
    /// S3-compatible servers want. `object_store` uses it unless
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` says otherwise; true forces it.
    pub path_style: bool,
    /// Any of the store kind's `object_store` configuration keys, by name
    /// (`aws_virtual_hosted_style_request`, `google_service_account`,
    /// `azure_storage_account_key`, `timeout`…), case-insensitive. A key
    /// the store kind does not know is an error naming it.
    pub options: Vec<(String, String)>,
    /// Retries of transient failures (5xx, timeouts, resets, a body cut
    /// short), with backoff, by `object_store`: the only retry layer.
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
        let options: Vec<(&str, &str)> = self
            .options
            .iter()
            .map(|(key, value)| {
                let shown = if is_secret(key) { "<redacted>" } else { value };
                (key.as_str(), shown)
            })
            .collect();
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
            .field("options", &options)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .finish()
    }
}

/// Whether an option's value must never be shown.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "key", "token", "password", "sas", "credential"]
        .iter()
        .any(|word| key.contains(word) && !key.ends_with("key_id"))
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

    /// The same with one more `object_store` configuration key.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
            ..RetryConfig::default()
        }
    }
}

impl ObjectSmgr {
    /// A backend for `url`: `s3://` or `s3a://bucket[/prefix]`,
    /// `gs://bucket[/prefix]`, `az://container[/prefix]` (also `abfs://`
    /// and Azure's `https://` hosts), `http(s)://host[/prefix]` (WebDAV),
    /// `file:///dir` (a local directory; conditional writes off, since it
    /// cannot do them) or `memory://` (for tests), with `store` settings
    /// and the environment.
    pub fn from_url(url: &str, store: &StoreOptions, mut options: ObjectOptions) -> Result<Self> {
        let (object_store, prefix, conditional) = store_from_url(url, store)?;
        options.conditional_writes &= conditional;
        ObjectSmgr::new(object_store, &prefix, options)
    }
}

/// The store and key prefix a URL names, and whether the store can do
/// conditional writes (a local directory cannot). The prefix is the key
/// prefix as stored: `s3://b/a%20b` and `s3://b/a b` both name keys under
/// `a b/`. For wrapping the store (for example in
/// [`crate::testing::FaultyStore`]) before building the backend with
/// [`ObjectSmgr::new`].
///
/// # Errors
///
/// [`Error::InvalidPath`] for a URL that is not one, names no bucket,
/// carries credentials (the message never repeats them) or a scheme
/// `object_store` does not know; an error naming the setting for a
/// configuration the store's builder refuses.
pub fn store_from_url(
    url: &str,
    store: &StoreOptions,
) -> Result<(Arc<dyn ObjectStore>, String, bool)> {
    let parsed = url::Url::parse(url).map_err(|_| Error::InvalidPath {
        input: without_credentials_text(url),
        reason: "not a URL (expected s3://bucket/prefix, gs://, az://, file:///dir or memory://)",
    })?;
    let shown = shown_url(&parsed);
    let bad = |reason: &'static str| Error::InvalidPath {
        input: shown.clone(),
        reason,
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials in a URL are refused (they end up in shell history and logs): give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) or the store options"));
    }
    let (scheme, path) = ObjectStoreScheme::parse(&parsed)
        .map_err(|_| bad("not a store URL (expected s3://, s3a://, gs://, az://, abfs://, http(s)://, file:// or memory://, with a bucket where the scheme needs one)"))?;
    let prefix = path.as_ref().to_owned();
    let configure = |err: object_store::Error| {
        Error::io(
            "configure the store for",
            shown.clone(),
            std::io::Error::other(err.to_string()),
        )
    };
    let object_store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
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
        ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = AmazonS3Builder::from_env().with_url(url);
            for (key, value) in config_keys::<AmazonS3ConfigKey>(store)? {
                builder = builder.with_config(key, value);
            }
            builder = s3_shortcuts(builder, store).with_retry(store.retry());
            Arc::new(builder.build().map_err(configure)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url);
            for (key, value) in config_keys::<GoogleConfigKey>(store)? {
                builder = builder.with_config(key, value);
            }
            if store.allow_http {
                builder = builder
                    .with_client_options(object_store::ClientOptions::new().with_allow_http(true));
            }
            Arc::new(
                builder
                    .with_retry(store.retry())
                    .build()
                    .map_err(configure)?,
            )
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url);
            for (key, value) in config_keys::<AzureConfigKey>(store)? {
                builder = builder.with_config(key, value);
            }
            if store.allow_http {
                builder = builder.with_allow_http(true);
            }
            Arc::new(
                builder
                    .with_retry(store.retry())
                    .build()
                    .map_err(configure)?,
            )
        }
        ObjectStoreScheme::Http => {
            let base = &parsed[..url::Position::BeforePath];
            if parsed.scheme() == "http" {
                warn_if_plain_http_leaves_the_machine(&parsed);
            }
            let mut builder = HttpBuilder::new().with_url(base);
            for (key, value) in config_keys::<ClientConfigKey>(store)? {
                builder = builder.with_config(key, value);
            }
            if store.allow_http || parsed.scheme() == "http" {
                builder = builder.with_config(ClientConfigKey::AllowHttp, "true");
            }
            Arc::new(
                builder
                    .with_retry(store.retry())
                    .build()
                    .map_err(configure)?,
            )
        }
        _ => return Err(bad("a kind of store this build does not support")),
    };
    Ok((object_store, prefix, true))
}

/// The explicit options as configuration keys of one kind of store.
fn config_keys<K: std::str::FromStr>(store: &StoreOptions) -> Result<Vec<(K, &str)>> {
    store
        .options
        .iter()
        .map(|(key, value)| match key.to_ascii_lowercase().parse() {
            Ok(parsed) => Ok((parsed, value.as_str())),
            Err(_) => Err(Error::InvalidPath {
                input: key.clone(),
                reason: "not a configuration key of this kind of store (see object_store's config keys)",
            }),
        })
        .collect()
}

/// The S3 shortcuts of `StoreOptions`, over what the environment, the URL
/// and the explicit options set.
fn s3_shortcuts(mut builder: AmazonS3Builder, store: &StoreOptions) -> AmazonS3Builder {
    if let Some(endpoint) = &store.endpoint {
        // An http:// endpoint the caller names is meant to be used: allow
        // it, unless the environment or an option already decided.
        let decided = std::env::var_os("AWS_ALLOW_HTTP").is_some()
            || store.options.iter().any(|(key, _)| {
                key.eq_ignore_ascii_case("aws_allow_http") || key.eq_ignore_ascii_case("allow_http")
            });
        if endpoint.starts_with("http://") && !decided {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    if store.allow_http {
        builder = builder.with_allow_http(true);
    }
    if store.path_style {
        builder = builder.with_virtual_hosted_style_request(false);
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
        builder = builder.with_credentials(Arc::new(crate::aws_sdk::SdkCredentials::default()));
    }
    if let Some(endpoint) = builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
        if let Ok(endpoint) = url::Url::parse(&endpoint) {
            if endpoint.scheme() == "http" {
                warn_if_plain_http_leaves_the_machine(&endpoint);
            }
        }
    }
    builder
}

/// Plain HTTP carries request signatures and data in the clear: fine on
/// this machine (a test server), worth a warning anywhere else.
fn warn_if_plain_http_leaves_the_machine(url: &url::Url) {
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !loopback {
        tracing::warn!(
            endpoint = %shown_url(url),
            "plain http:// to a host that is not this machine: data and request signatures travel unencrypted"
        );
    }
}

/// A URL as errors and logs may show it: without user name or password.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// The text of something that did not parse as a URL, without whatever
/// sits between `://` and an `@` (credentials, if it has any).
fn without_credentials_text(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}{}", &text[..start + 3], &text[at + 1..])
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_decoded_once() {
        let options = StoreOptions::new();
        for (url, prefix) in [
            ("memory:///pg~15", "pg~15"),
            ("memory:///a%20b", "a b"),
            ("memory:///a b/c", "a b/c"),
            ("memory:///x%2541", "x%41"),
            ("memory:///d%C3%A9j%C3%A0", "déjà"),
            ("memory:///", ""),
        ] {
            let (_, got, _) = store_from_url(url, &options).unwrap();
            assert_eq!(got, prefix, "{url}");
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused_and_not_repeated() {
        let options = StoreOptions::new();
        for url in [
            "s3://AKIAEXAMPLE:s3cr3t-value@bucket/prefix",
            "gs://user:s3cr3t-value@bucket",
            "s3://s3cr3t-value@bucket/prefix",
        ] {
            let err = store_from_url(url, &options).err().unwrap().to_string();
            assert!(err.contains("credentials in a URL"), "{err}");
            assert!(!err.contains("s3cr3t-value"), "{err}");
        }
        let err = store_from_url("not a url://x:s3cr3t-value@", &options)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }

    #[test]
    fn unknown_option_keys_are_named() {
        let options = StoreOptions::new().option("aws_no_such_setting", "1");
        let err = store_from_url("s3://bucket/p", &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("aws_no_such_setting"), "{err}");
    }

    #[test]
    fn every_scheme_of_the_ecosystem_builds_a_store() {
        let options = StoreOptions::new()
            .option("aws_access_key_id", "AKIAEXAMPLE")
            .option("aws_secret_access_key", "secret")
            .option("aws_region", "us-east-1");
        let gcs = StoreOptions::new().option("google_service_account_key", "{}");
        let plain = StoreOptions::new();
        for (url, options) in [
            ("s3://bucket/a", &options),
            ("s3a://bucket/a", &options),
            ("http://127.0.0.1:1/dav/a", &plain),
        ] {
            let (_, prefix, conditional) = store_from_url(url, options).unwrap();
            assert!(prefix.ends_with('a') && conditional, "{url}: {prefix}");
        }
        // Building a GCS or Azure store makes no request; with no
        // credentials at all its builder may refuse, but by naming what
        // is missing, not by not knowing the scheme.
        for (url, options) in [("gs://bucket/a", &gcs), ("az://container/a", &options)] {
            if let Err(err) = store_from_url(url, options) {
                let err = err.to_string();
                assert!(!err.contains("not a store URL"), "{url}: {err}");
                assert!(!err.contains("does not support"), "{url}: {err}");
            }
        }
    }
}
