//! S3-compatible object storage through the official AWS SDK.
//!
//! Credentials come from the standard chain (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, profiles, ...); the endpoint from
//! `--endpoint-url` or `AWS_ENDPOINT_URL`. A custom endpoint gets path-style
//! addressing and checksums only "when required", which is what Garage,
//! MinIO, Ceph and R2 accept. The destination owns a small tokio runtime so
//! the synchronous encode workers can store objects; an object PUT is
//! atomic, so readers never see a partial segment or playlist.

use super::Destination;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use std::io;

/// How to reach the S3 service, beyond the standard AWS environment.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server (`--endpoint-url`).
    pub endpoint_url: Option<String>,
}

/// Builds a client from the standard AWS configuration and `options`.
pub async fn client(options: &S3Options) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(
        aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(Region::new("us-east-1")),
    );
    if let Some(url) = &options.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    let custom_endpoint = shared.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(custom_endpoint)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket and key prefix.
pub struct S3Dest {
    bucket: String,
    prefix: String,
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

impl S3Dest {
    /// A destination writing under `s3://bucket/prefix`.
    pub fn connect(bucket: &str, prefix: &str, options: &S3Options) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-io")
            .enable_all()
            .build()?;
        let client = runtime.block_on(client(options));
        Ok(S3Dest {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            client,
            runtime,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// An SDK error as an I/O error: the causes in words, most general first,
/// without repeats. SDK errors never include credentials.
fn failed<E: std::error::Error + 'static>(e: E) -> io::Error {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = cause {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = err.source();
    }
    if parts.is_empty() {
        return io::Error::other(DisplayErrorContext(e).to_string());
    }
    io::Error::other(parts.join(": "))
}

impl Destination for S3Dest {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let full = self.key(key);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(bytes.to_vec()))
            .send();
        self.runtime
            .handle()
            .block_on(request)
            .map(|_| ())
            .map_err(failed)
    }

    fn exists(&self, key: &str) -> bool {
        let request = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send();
        self.runtime.handle().block_on(request).is_ok()
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let request = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .send();
        self.runtime
            .handle()
            .block_on(request)
            .map(|_| ())
            .map_err(failed)
    }

    fn remove_incomplete(&self, _prefix: &str) -> io::Result<()> {
        // Single PUTs are atomic: an interrupted one leaves nothing behind.
        Ok(())
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }
}
