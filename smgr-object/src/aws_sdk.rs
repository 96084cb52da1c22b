//! Credentials from the AWS SDK's default chain, for `object_store`'s S3
//! client (feature `aws-sdk`).
//!
//! `object_store` signs requests itself but only knows static keys, the
//! environment, web identity and IMDS in a fixed way. Users who rely on the
//! full AWS chain (named profiles, SSO, credential processes, ECS) get it
//! here: the SDK resolves and refreshes credentials, `object_store` keeps
//! doing the requests, so every test of the backend applies unchanged.

use std::sync::Arc;

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;
use tokio::sync::OnceCell;

/// A credential provider backed by `aws_config`'s default chain, loaded on
/// first use. `Debug` shows no credentials.
#[derive(Default)]
pub struct SdkCredentials {
    provider: OnceCell<Option<SharedCredentialsProvider>>,
}

impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkCredentials(aws default chain)")
    }
}

fn failed(message: String) -> object_store::Error {
    object_store::Error::Unauthenticated {
        path: String::new(),
        source: message.into(),
    }
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let provider = self
            .provider
            .get_or_init(|| async {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await
                    .credentials_provider()
            })
            .await
            .as_ref()
            .ok_or_else(|| failed("the AWS SDK found no credentials provider".to_owned()))?;
        // The SDK's own error text names the providers tried, not secrets.
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|err| failed(format!("the AWS SDK credential chain failed: {err}")))?;
        Ok(Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        }))
    }
}
