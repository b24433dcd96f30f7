//! S3 adapter: the bucket (profile documents and the mail outbox).
//!
//! Every write is create-if-absent (`If-None-Match: *`, honoured by S3 since
//! 2024-08 and by moto): an object, once written, is never replaced, so it
//! is its own fact. A duplicate finds it (412 `PreconditionFailed`) and
//! succeeds without writing.

use crate::{sdk_error, Detail};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use eventline_app::ports::{BlobStore, Put};
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
    async fn put_new(
        &self,
        key: &str,
        body: String,
        content_type: &'static str,
    ) -> Result<Put, PortError> {
        const OP: &str = "S3 PutObject";
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Put::Created),
            // 412: an object is there, and was kept. (A 409
            // ConditionalRequestConflict, a concurrent conditional write,
            // stays an error: retried.)
            Err(SdkError::ServiceError(e))
                if e.raw().status().as_u16() == 412
                    || e.err().code() == Some("PreconditionFailed") =>
            {
                Ok(Put::Exists)
            }
            Err(e) => Err(sdk_error(OP, &e, Detail::CodeAndMessage)),
        }
    }
}
