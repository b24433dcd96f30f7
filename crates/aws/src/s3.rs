//! S3 adapter: the bucket (profile documents and the mail outbox).

use crate::{sdk_error, Detail};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use eventline_app::ports::BlobStore;
use eventline_app::PortError;

/// Builds the S3 client. With an endpoint override (local emulator) it uses
/// path-style addressing: virtual-host style would need DNS for
/// `bucket.localhost`, which does not resolve.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    Client::from_conf(s3_config)
}

/// Writes objects to one bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// Adapter for `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<(), PortError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| sdk_error("S3 PutObject", &e, Detail::CodeAndMessage))?;
        Ok(())
    }
}
