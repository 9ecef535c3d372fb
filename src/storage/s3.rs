//! S3-compatible object storage through the official AWS SDK.
//!
//! Credentials come from the standard chain (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, profiles, ...); the endpoint from
//! `--endpoint-url` or `AWS_ENDPOINT_URL`. A custom endpoint gets path-style
//! addressing and checksums only "when required", which is what Garage,
//! MinIO, Ceph and R2 accept. The destination owns a small tokio runtime so
//! the synchronous encode workers can store objects; an object PUT is
//! atomic, so readers never see a partial segment or playlist. Writes (and
//! the reads the write path depends on) are retried under
//! [`S3Options::retry`] by [`retry`](super::retry), so a server restart
//! costs a pause, not the run.

use super::kind;
use super::retry::{describe, retry, Failed, RetryPolicy, Transient, Verdict};
use super::Destination;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How to reach the S3 service, beyond the standard AWS environment.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server (`--endpoint-url`).
    pub endpoint_url: Option<String>,
    /// How long a request of an [`S3Session`] that fails for a passing
    /// reason is retried (`--retry-for`).
    pub retry: RetryPolicy,
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

/// A connection to S3: the SDK client and the small runtime that drives it
/// for synchronous callers (encode workers, the batch loop).
pub struct S3Session {
    client: aws_sdk_s3::Client,
    /// The same client without SDK retries, for the requests retried under
    /// `retry` (an attempt is then one request).
    direct: aws_sdk_s3::Client,
    retry: RetryPolicy,
    runtime: tokio::runtime::Runtime,
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Its ETag, when the server gives one.
    pub etag: Option<String>,
    /// When it was stored, when the server says.
    pub modified: Option<std::time::SystemTime>,
}

impl S3Session {
    /// Connects with the standard AWS configuration and `options`.
    pub fn connect(options: &S3Options) -> io::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-io")
            .enable_all()
            .build()?;
        let client = runtime.block_on(client(options));
        let direct = without_retries(&client);
        Ok(Arc::new(S3Session {
            client,
            direct,
            retry: options.retry,
            runtime,
        }))
    }

    /// Runs `future` to completion on the session's runtime.
    pub fn wait<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }

    /// The SDK client (the SDK retries its requests a few times).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Stores `bytes` at `key` with one PUT carrying the Content-Type and
    /// Cache-Control of its kind ([`kind::for_output`]), retried under the
    /// session's policy.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.wait(put_object(&self.direct, &self.retry, bucket, key, bytes))
            .map_err(exhausted)
    }

    /// The content of `key`; a missing key fails at once.
    pub fn get(&self, bucket: &str, key: &str) -> io::Result<Vec<u8>> {
        let read = get_object(&self.direct, &self.retry, bucket, key, None, None);
        self.wait(read).map_err(exhausted)
    }

    /// Reads `size` bytes of `key` in ranges of `range` bytes, up to
    /// `in_flight` GETs at once, each retried under the session's policy
    /// and each sent with `If-Match: etag` (when known), so an object
    /// replaced midway fails instead of mixing two versions. Every range
    /// goes to `sink(offset, bytes)` as it arrives (in any order). Stops
    /// with [`io::ErrorKind::Interrupted`] once `cancel` is set.
    pub fn get_ranges(
        &self,
        bucket: &str,
        key: &str,
        (size, etag): (u64, Option<&str>),
        (range, in_flight): (u64, usize),
        sink: &mut dyn FnMut(u64, &[u8]) -> io::Result<()>,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> io::Result<()> {
        let range = range.max(1);
        self.wait(async {
            let mut offsets = (0..size).step_by(range as usize);
            let mut running = tokio::task::JoinSet::new();
            loop {
                let stopping = cancel.load(std::sync::atomic::Ordering::Relaxed);
                while !stopping && running.len() < in_flight.max(1) {
                    let Some(offset) = offsets.next() else { break };
                    let (client, policy) = (self.direct.clone(), self.retry);
                    let (bucket, key) = (bucket.to_string(), key.to_string());
                    let last = (offset + range).min(size) - 1;
                    let etag = etag.map(str::to_string);
                    running.spawn(async move {
                        let bytes = format!("bytes={offset}-{last}");
                        get_object(&client, &policy, &bucket, &key, Some(bytes), etag)
                            .await
                            .map(|body| (offset, body))
                            .map_err(|e| io::Error::other(format!("s3://{bucket}/{key}: {e}")))
                    });
                }
                let Some(done) = running.join_next().await else {
                    return if stopping {
                        Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
                    } else {
                        Ok(())
                    };
                };
                let (offset, body) = done.map_err(io::Error::other)??;
                sink(offset, &body)?;
            }
        })
    }

    /// The size of part 1 of `key` when it was stored by a multipart
    /// upload (HEAD with `partNumber=1`), to check its multipart ETag;
    /// `None` when the server does not say.
    pub fn first_part_size(&self, bucket: &str, key: &str) -> Option<u64> {
        let head = self
            .direct
            .head_object()
            .bucket(bucket)
            .key(key)
            .part_number(1);
        let head = self.wait(head.send()).ok()?;
        head.content_length().and_then(|n| u64::try_from(n).ok())
    }

    /// Stores every `(key, bytes)` with up to `concurrency` PUTs in flight,
    /// each with the headers of its kind like [`put`](Self::put) and
    /// retried under the session's policy; the first failure (naming its
    /// key) is returned once the PUTs under way have ended.
    pub fn put_all(
        &self,
        bucket: &str,
        files: &[(String, Vec<u8>)],
        concurrency: usize,
    ) -> io::Result<()> {
        self.wait(async {
            let mut pending = files.iter();
            let mut running = tokio::task::JoinSet::new();
            let mut first_error = None;
            loop {
                while first_error.is_none() && running.len() < concurrency.max(1) {
                    let Some((key, bytes)) = pending.next() else {
                        break;
                    };
                    let (client, policy) = (self.direct.clone(), self.retry);
                    let (bucket, key, bytes) = (bucket.to_string(), key.clone(), bytes.clone());
                    running.spawn(async move {
                        put_object(&client, &policy, &bucket, &key, &bytes)
                            .await
                            .map_err(|e| io::Error::other(format!("s3://{bucket}/{key}: {e}")))
                    });
                }
                let Some(done) = running.join_next().await else {
                    return first_error.map_or(Ok(()), Err);
                };
                if let Err(e) = done.map_err(io::Error::other).and_then(|put| put) {
                    first_error.get_or_insert(e);
                }
            }
        })
    }

    /// Size and ETag of `key`; a missing key (or bucket) fails at once,
    /// saying which.
    pub fn head(&self, bucket: &str, key: &str) -> io::Result<ObjectInfo> {
        self.find(bucket, key)?
            .ok_or_else(|| self.missing(bucket, key))
    }

    /// Size and ETag of `key`, or `None` when there is no such object.
    pub fn find(&self, bucket: &str, key: &str) -> io::Result<Option<ObjectInfo>> {
        let what = format!("HEAD s3://{bucket}/{key}");
        let request = retry(&self.retry, &what, || {
            self.direct.head_object().bucket(bucket).key(key).send()
        });
        let head = match self.wait(request) {
            Ok(head) => head,
            Err(failed) if http_status(&failed.error) == Some(404) => return Ok(None),
            Err(failed) => return Err(exhausted(failed)),
        };
        Ok(Some(ObjectInfo {
            key: key.to_string(),
            size: head.content_length().unwrap_or(0).max(0) as u64,
            etag: head.e_tag().map(str::to_string),
            modified: head.last_modified().and_then(|t| (*t).try_into().ok()),
        }))
    }

    /// Whether `bucket` exists and this key may use it; the error says
    /// which is not so.
    pub fn check_bucket(&self, bucket: &str) -> io::Result<()> {
        let what = format!("HEAD s3://{bucket}");
        let request = retry(&self.retry, &what, || {
            self.direct.head_bucket().bucket(bucket).send()
        });
        self.wait(request)
            .map(|_| ())
            .map_err(|failed| match http_status(&failed.error) {
                Some(404) => io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no such bucket `{bucket}`"),
                ),
                Some(403) => io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("no access to bucket `{bucket}`"),
                ),
                _ => exhausted(failed),
            })
    }

    /// Why a HEAD of `key` found nothing, in words: no such bucket, or no
    /// such object in it (a 404 to HEAD carries no error code to tell).
    fn missing(&self, bucket: &str, key: &str) -> io::Error {
        let bucket_exists = self
            .wait(self.direct.head_bucket().bucket(bucket).send())
            .is_ok();
        let reason = if bucket_exists {
            format!("no such object: s3://{bucket}/{key} does not exist")
        } else {
            format!("no such bucket `{bucket}` (or no access to it)")
        };
        io::Error::new(io::ErrorKind::NotFound, reason)
    }

    /// Removes `key`, retried under the session's policy.
    pub fn delete(&self, bucket: &str, key: &str) -> io::Result<()> {
        let what = format!("DELETE s3://{bucket}/{key}");
        let request = retry(&self.retry, &what, || {
            self.direct.delete_object().bucket(bucket).key(key).send()
        });
        self.wait(request).map(|_| ()).map_err(exhausted)
    }

    /// Every object under `prefix`, in key order.
    pub fn list(&self, bucket: &str, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        let mut objects = Vec::new();
        self.list_pages(bucket, prefix, &mut |page| {
            objects.extend(page);
            Ok(())
        })?;
        Ok(objects)
    }

    /// The objects under `prefix`, in key order, handed to `visit` one
    /// page (up to 1000) at a time, so a huge prefix is never held in
    /// memory; stops at `visit`'s first error.
    pub fn list_pages(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(Vec<ObjectInfo>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut token: Option<String> = None;
        loop {
            let what = format!("LIST s3://{bucket}/{prefix}");
            let request = retry(&self.retry, &what, || {
                self.direct
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.clone())
                    .send()
            });
            let page = self.wait(request).map_err(|e| {
                if e.error.code() == Some("NoSuchBucket") {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no such bucket `{bucket}`"),
                    )
                } else {
                    exhausted(e)
                }
            })?;
            visit(
                page.contents()
                    .iter()
                    .filter_map(|o| {
                        Some(ObjectInfo {
                            key: o.key()?.to_string(),
                            size: o.size().unwrap_or(0).max(0) as u64,
                            etag: o.e_tag().map(str::to_string),
                            modified: o.last_modified().and_then(|t| (*t).try_into().ok()),
                        })
                    })
                    .collect(),
            )?;
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(()),
            }
        }
    }

    /// Removes up to 1000 `keys` with one DeleteObjects request, retried
    /// under the session's policy; returns the keys the server refused,
    /// each with its reason. A key that did not exist is not refused.
    pub fn delete_many(&self, bucket: &str, keys: &[String]) -> io::Result<Vec<(String, String)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(io::Error::other)?;
        let what = format!("DELETE {} objects in s3://{bucket}", keys.len());
        let request = retry(&self.retry, &what, || {
            self.direct
                .delete_objects()
                .bucket(bucket)
                .delete(delete.clone())
                .send()
        });
        let answer = self.wait(request).map_err(exhausted)?;
        Ok(answer
            .errors()
            .iter()
            .map(|e| {
                let reason = match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_string(),
                    (None, Some(message)) => message.to_string(),
                    (None, None) => "refused by the server".to_string(),
                };
                (e.key().unwrap_or_default().to_string(), reason)
            })
            .collect())
    }

    /// A presigned GET URL for `key`, valid for `expires`. It is a bearer
    /// token: hand it to libav, never print it.
    pub fn presign_get(&self, bucket: &str, key: &str, expires: Duration) -> io::Result<String> {
        let config = PresigningConfig::expires_in(expires).map_err(io::Error::other)?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config);
        let presigned = self.wait(request).map_err(failed)?;
        Ok(presigned.uri().to_string())
    }
}

/// Small objects in flight at once in [`Destination::put_all`].
const PUT_CONCURRENCY: usize = 16;

/// A bucket and key prefix as a [`Destination`].
pub struct S3Dest {
    bucket: String,
    prefix: String,
    session: Arc<S3Session>,
}

impl S3Dest {
    /// A destination writing under `s3://bucket/prefix`.
    pub fn new(session: Arc<S3Session>, bucket: &str, prefix: &str) -> Self {
        S3Dest {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            session,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// An SDK error as an I/O error (see [`describe`]).
pub(crate) fn failed<E: std::error::Error + 'static>(e: E) -> io::Error {
    io::Error::other(describe(&e))
}

/// The HTTP status of a service's answer, when there was one.
fn http_status<E>(e: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// A retried request's final failure as an I/O error: its causes and the
/// attempts made.
fn exhausted<E: std::error::Error + 'static>(e: Failed<E>) -> io::Error {
    io::Error::other(e.to_string())
}

/// `client` with the SDK's own retries turned off: for requests that
/// [`retry`] repeats, so an attempt is one request and the policy alone
/// bounds the time spent.
pub(crate) fn without_retries(client: &aws_sdk_s3::Client) -> aws_sdk_s3::Client {
    let config = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Stores `bytes` at `key` with one PUT carrying the headers of its kind,
/// retried under `policy`.
async fn put_object(
    client: &aws_sdk_s3::Client,
    policy: &RetryPolicy,
    bucket: &str,
    key: &str,
    bytes: &[u8],
) -> Result<(), Failed<PutError>> {
    let what = format!("PUT s3://{bucket}/{key}");
    let headers = kind::for_output(key);
    retry(policy, &what, || {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(&headers.content_type)
            .set_cache_control(headers.cache_control.map(str::to_string))
            .body(ByteStream::from(bytes.to_vec()))
            .send()
    })
    .await
    .map(|_| ())
}

type PutError = aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>;

/// `key`'s content, or the byte `range` of it (`bytes=A-B`) when given,
/// only while its ETag is `if_match` when given; retried under `policy`.
async fn get_object(
    client: &aws_sdk_s3::Client,
    policy: &RetryPolicy,
    bucket: &str,
    key: &str,
    range: Option<String>,
    if_match: Option<String>,
) -> Result<Vec<u8>, Failed<GetError>> {
    let what = format!("GET s3://{bucket}/{key}");
    retry(policy, &what, || async {
        let object = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(range.clone())
            .set_if_match(if_match.clone())
            .send()
            .await
            .map_err(|e| GetError::Request(Box::new(e)))?;
        let body = object.body.collect().await.map_err(GetError::Body)?;
        Ok::<_, GetError>(body.into_bytes().to_vec())
    })
    .await
}

/// How reading an object can fail: the request, or its body midway (a
/// passing failure, like a connection reset).
#[derive(Debug, thiserror::Error)]
enum GetError {
    #[error(transparent)]
    Request(Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>>),
    #[error("reading the body: {0}")]
    Body(#[source] aws_smithy_types::byte_stream::error::Error),
}

impl Transient for GetError {
    fn verdict(&self) -> Verdict {
        match self {
            GetError::Request(e) => e.verdict(),
            GetError::Body(_) => Verdict::Retry,
        }
    }
}

impl Destination for S3Dest {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.session.put(&self.bucket, &self.key(key), bytes)
    }

    fn put_all(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(key, bytes)| (self.key(key), bytes.clone()))
            .collect();
        self.session.put_all(&self.bucket, &files, PUT_CONCURRENCY)
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        self.session.get(&self.bucket, &self.key(key))
    }

    fn exists(&self, key: &str) -> bool {
        matches!(self.session.find(&self.bucket, &self.key(key)), Ok(Some(_)))
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        self.session.delete(&self.bucket, &self.key(key))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let objects = self.session.list(&self.bucket, &self.key(prefix))?;
        Ok(objects
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&self.prefix).map(str::to_string))
            .collect())
    }

    fn remove_incomplete(&self, _prefix: &str) -> io::Result<()> {
        // Single PUTs are atomic: an interrupted one leaves nothing behind.
        Ok(())
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(key))
    }
}
