//! `upload-chunked`: resumable multipart upload to S3-compatible storage.
//!
//! Files below the part size go up in one PUT. Larger files become a
//! multipart upload whose parts are read from the file at their offset on
//! every attempt (memory stays near concurrency × part size), sent in
//! parallel under one semaphore shared by every file of the batch, each
//! with a CRC32C the server checks (a Content-MD5 for an adopted upload
//! that another tool started without checksums), and retried by the storage layer's one
//! retry helper (backoff with jitter, harder on 503 SlowDown) up to
//! `--attempts` times. Every acknowledged part is recorded
//! in a [`journal::Journal`]; a re-run reconciles it with ListParts and only
//! sends what is missing. Without a journal (another machine started the
//! upload, or the state directory is gone) the server's incomplete upload
//! of the key is adopted when its parts fit the plan and prove to be the
//! file's bytes ([`held`]); a held part proven different refuses the file.
//! A source whose size or mtime changed while it was
//! read fails the file: a multipart upload is aborted before it completes
//! (and its journal forgotten), a single PUT's object is deleted again. At
//! the end the stored object's size and composite checksum are compared
//! with the source's.

pub mod held;
pub mod journal;
pub mod plan;

use crate::inputs::Share;
use crate::progress::{Event, Position, Reporter};
use crate::storage::kind::{self, ObjectHeaders};
use crate::storage::retry::describe;
use crate::storage::retry::{retry, Failed, RetryPolicy, Transient, Verdict};
use crate::storage::s3::{failed, without_retries, S3Session};
use crate::CancelFlag;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use held::{HeldPart, PartCheck};
use journal::{Journal, PartChecksum, PartRecord};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Semaphore;

/// Validated settings of `upload-chunked`.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Requested part size (grown for huge files); also the single-PUT
    /// threshold.
    pub part_size: u64,
    /// Parts in flight across all files.
    pub concurrency: usize,
    /// Attempts per part (and per single PUT) before giving up.
    pub attempts: u32,
    /// Content-Type of every file (`--content-type`); by default each
    /// file's comes from its key ([`kind::for_upload`]).
    pub content_type: Option<String>,
}

/// One file and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadItem {
    /// Local file.
    pub source: PathBuf,
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
}

impl UploadItem {
    /// `s3://bucket/key`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Why a file could not be uploaded.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The source cannot be read.
    #[error("{0}")]
    Source(String),
    /// The source changed since the journaled upload started, or while
    /// it was being uploaded.
    #[error("{0}")]
    Changed(String),
    /// A part failed after every attempt.
    #[error("part {part}: {reason} (after {attempts} attempts)")]
    Part {
        /// 1-based part number.
        part: u32,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        reason: String,
    },
    /// A request the upload cannot go on without failed.
    #[error("{0}")]
    Remote(String),
    /// The local journal cannot be read, written or removed.
    #[error(transparent)]
    Journal(#[from] crate::state::StateError),
    /// The stored object does not match the source.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Interrupted; the journal is kept.
    #[error("interrupted")]
    Interrupted,
    /// The multipart upload vanished while this run was using it: another
    /// process (that had adopted it too) completed or aborted it.
    #[error("{0}")]
    Gone(String),
}

/// What one finished upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes stored.
    pub bytes: u64,
    /// Parts sent by this run (0 for a single PUT).
    pub parts_sent: u32,
    /// Parts an earlier run had already sent.
    pub parts_resumed: u32,
}

/// Uploads every item (files in parallel, parts under one shared limit);
/// one result per item, in order. `share` is what `--shard` kept of the
/// batch (`items` are its files), reported with each file's first event.
pub fn upload_all(
    session: &S3Session,
    items: &[UploadItem],
    share: Share,
    settings: &UploadSettings,
    journal_dir: &Path,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
) -> Vec<Result<Uploaded, UploadError>> {
    let data = without_retries(session.client());
    let control = control_client(session, settings.attempts);
    let policy = RetryPolicy::attempts(settings.attempts);
    let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    session.wait(async {
        let uploads = items.iter().enumerate().map(|(i, item)| {
            let ctx = Upload {
                position: Position::in_share(i, share),
                data: &data,
                control: &control,
                policy: &policy,
                item,
                settings,
                journal_dir,
                reporter,
                cancel,
                limit: limit.clone(),
                vanished: Default::default(),
            };
            async move { ctx.run().await }
        });
        join_all(uploads).await
    })
}

/// Awaits every future concurrently, keeping their order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, slot) in pinned.iter_mut().zip(results.iter_mut()) {
            if slot.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// What is known about an item's upload: the local journal and the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UploadStatus {
    /// Local source.
    pub source: PathBuf,
    /// Destination URL.
    pub url: String,
    /// Upload id, if a multipart upload is in progress.
    pub upload_id: Option<String>,
    /// Parts in the whole upload.
    pub parts_total: u32,
    /// Parts the journal records as acknowledged.
    pub parts_journaled: u32,
    /// Parts the server lists for the upload (None if it no longer exists).
    pub parts_on_server: Option<u32>,
    /// Bytes acknowledged.
    pub bytes_done: u64,
    /// Source size when the upload started.
    pub bytes_total: u64,
}

/// An unfinished multipart upload on the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncompleteUpload {
    /// Its key.
    pub key: String,
    /// Its upload id.
    pub upload_id: String,
    /// Seconds since it was started.
    pub age_seconds: u64,
    /// When it was started.
    pub initiated: std::time::SystemTime,
}

/// A client whose requests the SDK retries up to `attempts` times, for the
/// control calls (create, list, complete, head). Parts and single PUTs go
/// through a client without SDK retries: [`retry`] repeats them, reading
/// the file again for every attempt.
fn control_client(session: &S3Session, attempts: u32) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::retry::RetryConfig;
    if attempts <= 1 {
        return without_retries(session.client());
    }
    let config = session
        .client()
        .config()
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(attempts))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Whether the server answered that the multipart upload does not exist
/// (it completed, expired or was aborted).
fn is_no_such_upload<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("NoSuchUpload")
}

/// How one attempt at sending bytes failed: locally (the source cannot be
/// read, the run was interrupted: final), or in the request.
#[derive(Debug, thiserror::Error)]
enum SendFailure<E: std::error::Error + 'static> {
    #[error(transparent)]
    Local(UploadError),
    #[error(transparent)]
    Request(Box<SdkError<E>>),
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static> Transient for SendFailure<E> {
    fn verdict(&self) -> Verdict {
        match self {
            SendFailure::Local(_) => Verdict::Final,
            SendFailure::Request(e) => e.verdict(),
        }
    }
}

/// A CompleteMultipartUpload that failed. InvalidPart is tried again:
/// while another process that adopted the same upload is sending a part
/// this run already sent, the server's newest version of that part is
/// unfinished and matches no ETag, until that send ends.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct CompleteFailure(
    SdkError<aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError>,
);

impl CompleteFailure {
    fn is_invalid_part<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
        e.as_service_error().and_then(|s| s.code()) == Some("InvalidPart")
    }
}

impl Transient for CompleteFailure {
    fn verdict(&self) -> Verdict {
        if Self::is_invalid_part(&self.0) {
            Verdict::Retry
        } else {
            self.0.verdict()
        }
    }
}

/// The upload error for a send that failed for good: a local failure as
/// it is, a request's through `remote`.
fn send_failed<E: std::error::Error + 'static>(
    failed: Failed<SendFailure<E>>,
    remote: impl FnOnce(Failed<SdkError<E>>) -> UploadError,
) -> UploadError {
    match failed.error {
        SendFailure::Local(e) => e,
        SendFailure::Request(error) => remote(Failed {
            error: *error,
            attempts: failed.attempts,
        }),
    }
}

/// `len` bytes of `file` from `offset`, read for every attempt so memory
/// holds only the parts in flight.
fn read_at(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset)?;
    Ok(bytes)
}

/// The journal, also when a part's task panicked while holding it (its
/// state is still whole: parts are inserted in one step).
fn lock(journal: &Mutex<Journal>) -> MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The journal of `item` and what the server holds for it.
pub fn status(
    session: &S3Session,
    item: &UploadItem,
    journal_dir: &Path,
) -> Result<UploadStatus, UploadError> {
    let path = Journal::path_for(journal_dir, &item.bucket, &item.key);
    let Some(journal) = Journal::load(&path)?.value else {
        return Ok(UploadStatus {
            source: item.source.clone(),
            url: item.url(),
            upload_id: None,
            parts_total: 0,
            parts_journaled: 0,
            parts_on_server: None,
            bytes_done: 0,
            bytes_total: std::fs::metadata(&item.source).map_or(0, |m| m.len()),
        });
    };
    let listed = session.wait(
        session
            .client()
            .list_parts()
            .bucket(&item.bucket)
            .key(&item.key)
            .upload_id(&journal.upload_id)
            .send(),
    );
    let parts_on_server = match listed {
        Ok(page) => Some(page.parts().len() as u32),
        Err(e) if is_no_such_upload(&e) => None,
        Err(e) => {
            return Err(UploadError::Remote(format!(
                "cannot list the parts of {}: {}",
                item.url(),
                failed(e)
            )))
        }
    };
    Ok(UploadStatus {
        source: item.source.clone(),
        url: item.url(),
        upload_id: Some(journal.upload_id.clone()),
        parts_total: plan::part_count(journal.source_size, journal.part_size),
        parts_journaled: journal.parts.len() as u32,
        parts_on_server,
        bytes_done: journal.bytes_done(),
        bytes_total: journal.source_size,
    })
}

/// What `--abort` did for one destination key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Aborted {
    /// Upload ids aborted on the server.
    pub upload_ids: Vec<String>,
    /// Whether a local journal was forgotten.
    pub journal_forgotten: bool,
}

/// Aborts every unfinished multipart upload the server lists for exactly
/// `item`'s key (whether or not a journal or the source exists) and
/// forgets its journal.
pub fn abort(
    session: &S3Session,
    item: &UploadItem,
    journal_dir: &Path,
) -> Result<Aborted, UploadError> {
    let mut done = Aborted::default();
    let listed = list_incomplete(session, &item.bucket, &item.key)?;
    for upload in listed.into_iter().filter(|u| u.key == item.key) {
        if abort_upload(session, &item.bucket, &upload)? {
            done.upload_ids.push(upload.upload_id);
        }
    }
    let path = Journal::path_for(journal_dir, &item.bucket, &item.key);
    if path.exists() {
        Journal::remove(&path)?;
        done.journal_forgotten = true;
    }
    Ok(done)
}

/// Aborts one unfinished upload; `false` when it had completed or been
/// aborted meanwhile.
pub fn abort_upload(
    session: &S3Session,
    bucket: &str,
    upload: &IncompleteUpload,
) -> Result<bool, UploadError> {
    let aborted = session.wait(
        session
            .client()
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send(),
    );
    match aborted {
        Ok(_) => Ok(true),
        Err(e) if is_no_such_upload(&e) => Ok(false),
        Err(e) => Err(UploadError::Remote(format!(
            "cannot abort the upload {} to s3://{bucket}/{}: {}",
            upload.upload_id,
            upload.key,
            failed(e)
        ))),
    }
}

/// Unfinished multipart uploads under `prefix`, oldest first.
pub fn list_incomplete(
    session: &S3Session,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<IncompleteUpload>, UploadError> {
    session.wait(list_uploads(session.client(), bucket, prefix))
}

/// ListMultipartUploads under `prefix`, every page, oldest first.
async fn list_uploads(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<IncompleteUpload>, UploadError> {
    let mut found = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    let now = std::time::SystemTime::now();
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(id_marker.take())
            .send()
            .await
            .map_err(|e| {
                UploadError::Remote(format!(
                    "cannot list the uploads in s3://{bucket}/{prefix}: {}",
                    failed(e)
                ))
            })?;
        for u in page.uploads() {
            let started = u
                .initiated()
                .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                .unwrap_or(now);
            found.push(IncompleteUpload {
                key: u.key().unwrap_or_default().to_string(),
                upload_id: u.upload_id().unwrap_or_default().to_string(),
                age_seconds: now.duration_since(started).map_or(0, |d| d.as_secs()),
                initiated: started,
            });
        }
        if page.is_truncated() == Some(true) {
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
        } else {
            break;
        }
    }
    found.sort_by_key(|u| u.initiated);
    Ok(found)
}

struct Upload<'a> {
    /// For parts and single PUTs (retried under `policy`).
    data: &'a aws_sdk_s3::Client,
    /// For create, list, complete and head (retried by the SDK).
    control: &'a aws_sdk_s3::Client,
    /// How parts and single PUTs are retried.
    policy: &'a RetryPolicy,
    item: &'a UploadItem,
    /// Where the file stands in the batch.
    position: Position,
    settings: &'a UploadSettings,
    journal_dir: &'a Path,
    reporter: &'a dyn Reporter,
    cancel: &'a CancelFlag,
    limit: Arc<Semaphore>,
    /// Why the multipart upload is known to be gone (another process
    /// completed or aborted it): the parts still to send are not tried.
    vanished: std::sync::OnceLock<String>,
}

fn b64(crc: u32) -> String {
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// The checksum S3 reports for a multipart object of parts with these
/// CRC32Cs: the CRC32C of the parts' CRC32Cs, then `-` and the part count.
fn composite(parts: impl Iterator<Item = u32>) -> String {
    let joined: Vec<u8> = parts.flat_map(u32::to_be_bytes).collect();
    format!("{}-{}", b64(crc32c::crc32c(&joined)), joined.len() / 4)
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Fails with [`UploadError::Changed`] when the open source's size or
/// mtime differ from `before` (taken when its upload started): its bytes
/// were then read from a file being written. Asked of the open file, so a
/// file replaced or deleted meanwhile still counts as the bytes read.
fn unchanged(file: &std::fs::File, before: &std::fs::Metadata) -> Result<(), UploadError> {
    let now = file.metadata().map_err(|e| {
        UploadError::Source(format!("cannot read: {}", crate::inputs::describe_io(&e)))
    })?;
    if now.len() != before.len() || mtime_ns(&now) != mtime_ns(before) {
        return Err(UploadError::Changed(
            "changed while it was being uploaded".into(),
        ));
    }
    Ok(())
}

impl Upload<'_> {
    /// Fails the attempt about to start when the run is interrupted or
    /// the upload is gone.
    fn check_cancel<E: std::error::Error + 'static>(&self) -> Result<(), SendFailure<E>> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(SendFailure::Local(UploadError::Interrupted));
        }
        if let Some(why) = self.vanished.get() {
            return Err(SendFailure::Local(UploadError::Gone(why.clone())));
        }
        Ok(())
    }

    fn name(&self) -> String {
        self.item.source.display().to_string()
    }

    /// The headers the object is created with.
    fn headers(&self) -> ObjectHeaders {
        kind::for_upload(&self.item.key, self.settings.content_type.as_deref())
    }

    async fn run(&self) -> Result<Uploaded, UploadError> {
        let result = self.upload().await;
        match &result {
            Ok(done) => self.reporter.report(Event::Uploaded {
                input: self.name(),
                url: self.item.url(),
                bytes: done.bytes,
            }),
            Err(e) => self.reporter.report(Event::Error {
                input: self.name(),
                message: e.to_string(),
            }),
        }
        result
    }

    async fn upload(&self) -> Result<Uploaded, UploadError> {
        let file = std::fs::File::open(&self.item.source).map_err(|e| {
            UploadError::Source(format!("cannot read: {}", crate::inputs::describe_io(&e)))
        })?;
        // Of the open file: what [`unchanged`] compares with at the end.
        let meta = file.metadata().map_err(|e| {
            UploadError::Source(format!("cannot read: {}", crate::inputs::describe_io(&e)))
        })?;
        let size = meta.len();
        let part_size = plan::part_size_for(size, self.settings.part_size);
        if size <= self.settings.part_size {
            return self.single_put(file, &meta).await;
        }
        let journal_path = Journal::path_for(self.journal_dir, &self.item.bucket, &self.item.key);
        let journal = self
            .open_journal(&journal_path, &file, &meta, part_size)
            .await?;
        let part_size = journal.part_size;
        let total = plan::part_count(size, part_size);
        let resumed = journal.parts.len() as u32;
        self.reporter.report(Event::Initialized {
            input: self.name(),
            index: self.position.index,
            total: self.position.total,
            share: self.position.share,
            url: self.item.url(),
            parts_total: total,
            parts_done: resumed,
            bytes_total: size,
        });
        let journal = Arc::new(Mutex::new(journal));
        let file = Arc::new(file);
        let missing: Vec<u32> = {
            let journal = lock(&journal);
            (1..=total)
                .filter(|n| !journal.parts.contains_key(n))
                .collect()
        };
        let sent = missing.len() as u32;
        let parts = missing.into_iter().map(|number| {
            let journal = journal.clone();
            let file = file.clone();
            let journal_path = journal_path.clone();
            async move {
                let (offset, len) = plan::part_range(size, part_size, number);
                self.send_part(&file, number, offset, len, &journal, &journal_path, size)
                    .await
            }
        });
        let completed = async {
            // A vanished upload explains the other parts' failures.
            let mut failure = None;
            for result in join_all(parts).await {
                match result {
                    Ok(()) => {}
                    Err(gone @ UploadError::Gone(_)) => return Err(gone),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = failure {
                // A part sent to a vanished upload can also fail otherwise
                // (a server that answers before reading the body breaks
                // the pipe): ask whether the upload is still there.
                let upload_id = lock(&journal).upload_id.clone();
                if matches!(e, UploadError::Part { .. })
                    && matches!(self.server_parts(&upload_id).await, Err(None))
                {
                    return Err(self.gone("listing its parts"));
                }
                return Err(e);
            }
            let journal = lock(&journal).clone();
            if let Err(changed) = unchanged(&file, &meta) {
                self.discard(&journal.upload_id, &journal_path).await?;
                return Err(changed);
            }
            self.complete(&journal, size).await
        };
        match completed.await {
            Err(UploadError::Gone(why)) => {
                self.settled_elsewhere(&file, size, part_size, why).await?
            }
            other => other?,
        }
        if let Err(e) = Journal::remove(&journal_path) {
            tracing::warn!("{e}");
        }
        Ok(Uploaded {
            bytes: size,
            parts_sent: sent,
            parts_resumed: resumed,
        })
    }

    /// One PUT of the whole file. If the file changed while its bytes were
    /// read and sent, the stored object is deleted again: it may mix old
    /// and new bytes, and a failed file must not leave an object behind.
    async fn single_put(
        &self,
        file: std::fs::File,
        meta: &std::fs::Metadata,
    ) -> Result<Uploaded, UploadError> {
        let size = meta.len();
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|e| UploadError::Remote(e.to_string()))?;
        self.reporter.report(Event::Initialized {
            input: self.name(),
            index: self.position.index,
            total: self.position.total,
            share: self.position.share,
            url: self.item.url(),
            parts_total: 1,
            parts_done: 0,
            bytes_total: size,
        });
        let what = format!("PUT {}", self.item.url());
        let file = &file;
        let sent = retry(self.policy, &what, || async move {
            self.check_cancel()?;
            let bytes = read_at(file, 0, size).map_err(|e| {
                SendFailure::Local(UploadError::Source(format!("cannot read: {e}")))
            })?;
            let crc = crc32c::crc32c(&bytes);
            let headers = self.headers();
            self.data
                .put_object()
                .bucket(&self.item.bucket)
                .key(&self.item.key)
                .content_type(headers.content_type)
                .set_cache_control(headers.cache_control.map(str::to_string))
                .checksum_crc32_c(b64(crc))
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| SendFailure::Request(Box::new(e)))?;
            Ok(crc)
        })
        .await;
        let crc = sent.map_err(|gave_up| {
            send_failed(gave_up, |failed| {
                UploadError::Remote(format!("PUT {}: {failed}", self.item.url()))
            })
        })?;
        if let Err(changed) = unchanged(file, meta) {
            self.delete_stored().await?;
            return Err(changed);
        }
        self.verify(size, b64(crc)).await?;
        Ok(Uploaded {
            bytes: size,
            parts_sent: 0,
            parts_resumed: 0,
        })
    }

    /// Aborts the multipart upload `upload_id` (one already gone is fine)
    /// and forgets its journal.
    async fn discard(&self, upload_id: &str, journal_path: &Path) -> Result<(), UploadError> {
        let aborted = self
            .control
            .abort_multipart_upload()
            .bucket(&self.item.bucket)
            .key(&self.item.key)
            .upload_id(upload_id)
            .send()
            .await;
        match aborted {
            Ok(_) => {}
            Err(e) if is_no_such_upload(&e) => {}
            Err(e) => {
                return Err(UploadError::Remote(format!(
                    "the source changed while it was being uploaded, and the upload to {} cannot be aborted: {}",
                    self.item.url(),
                    failed(e)
                )))
            }
        }
        Journal::remove(journal_path)?;
        Ok(())
    }

    /// Deletes the object a single PUT stored from a source that changed
    /// meanwhile.
    async fn delete_stored(&self) -> Result<(), UploadError> {
        self.control
            .delete_object()
            .bucket(&self.item.bucket)
            .key(&self.item.key)
            .send()
            .await
            .map_err(|e| {
                UploadError::Remote(format!(
                    "the source changed while it was being uploaded, and {} (stored from it) cannot be deleted: {}",
                    self.item.url(),
                    failed(e)
                ))
            })?;
        Ok(())
    }

    /// The journal to continue, else an incomplete upload the server holds
    /// for the key (see [`Upload::adopt`]), else a new multipart upload.
    async fn open_journal(
        &self,
        path: &Path,
        file: &std::fs::File,
        meta: &std::fs::Metadata,
        part_size: u64,
    ) -> Result<Journal, UploadError> {
        let previous = Journal::load(path)?.reported(self.reporter, &self.name());
        if let Some(mut journal) = previous {
            if journal.source_size != meta.len() || journal.source_mtime != mtime_ns(meta) {
                return Err(UploadError::Changed(format!(
                    "refusing to resume: the file changed since its upload to {} started (journal {}); \
                     abort that upload (delete the journal) to start over",
                    self.item.url(),
                    path.display()
                )));
            }
            match self.server_parts(&journal.upload_id).await {
                Ok(on_server) => {
                    journal.parts.retain(|n, p| {
                        on_server
                            .iter()
                            .any(|held| held.number == *n && held.etag == p.etag)
                    });
                    let _ = journal.save(path);
                    return Ok(journal);
                }
                // The upload expired, or was completed or aborted
                // elsewhere: look on the server, else start over.
                Err(None) => {}
                Err(Some(e)) => return Err(e),
            }
        }
        if let Some(journal) = self.adopt(file, meta, part_size).await? {
            journal.save(path)?;
            return Ok(journal);
        }
        let headers = self.headers();
        let created = self
            .control
            .create_multipart_upload()
            .bucket(&self.item.bucket)
            .key(&self.item.key)
            .content_type(headers.content_type)
            .set_cache_control(headers.cache_control.map(str::to_string))
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| {
                UploadError::Remote(format!(
                    "cannot start the upload to {}: {}",
                    self.item.url(),
                    failed(e)
                ))
            })?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| UploadError::Remote("the server returned no upload id".into()))?
            .to_string();
        let journal = Journal {
            source: self.item.source.clone(),
            source_size: meta.len(),
            source_mtime: mtime_ns(meta),
            bucket: self.item.bucket.clone(),
            key: self.item.key.clone(),
            upload_id,
            part_size,
            part_checksum: PartChecksum::Crc32c,
            parts: Default::default(),
        };
        journal.save(path)?;
        Ok(journal)
    }

    /// Parts the server holds for `upload_id`; `Err(None)` if the upload
    /// no longer exists.
    async fn server_parts(&self, upload_id: &str) -> Result<Vec<HeldPart>, Option<UploadError>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .control
                .list_parts()
                .bucket(&self.item.bucket)
                .key(&self.item.key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if is_no_such_upload(&e) => return Err(None),
                Err(e) => {
                    return Err(Some(UploadError::Remote(format!(
                        "cannot list the parts of {}: {}",
                        self.item.url(),
                        failed(e)
                    ))))
                }
            };
            parts.extend(page.parts().iter().filter_map(|p| {
                Some(HeldPart {
                    number: u32::try_from(p.part_number()?).ok()?,
                    size: u64::try_from(p.size()?).ok()?,
                    etag: p.e_tag()?.to_string(),
                    crc32c: p.checksum_crc32_c().and_then(held::parse_crc32c),
                })
            }));
            match (page.is_truncated(), page.next_part_number_marker()) {
                (Some(true), Some(next)) => marker = Some(next.to_string()),
                _ => return Ok(parts),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_part(
        &self,
        file: &std::fs::File,
        number: u32,
        offset: u64,
        len: u64,
        journal: &Mutex<Journal>,
        journal_path: &Path,
        size: u64,
    ) -> Result<(), UploadError> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|e| UploadError::Remote(e.to_string()))?;
        let (upload_id, checksum) = {
            let journal = lock(journal);
            (journal.upload_id.clone(), journal.part_checksum)
        };
        let upload_id = upload_id.as_str();
        let what = format!("{} part {number}", self.item.url());
        let sent = retry(self.policy, &what, || async move {
            self.check_cancel()?;
            let bytes = read_at(file, offset, len).map_err(|e| {
                SendFailure::Local(UploadError::Source(format!(
                    "cannot read part {number}: {e}"
                )))
            })?;
            let crc = crc32c::crc32c(&bytes);
            let request = self
                .data
                .upload_part()
                .bucket(&self.item.bucket)
                .key(&self.item.key)
                .upload_id(upload_id)
                .part_number(number as i32);
            let request = match checksum {
                PartChecksum::Crc32c => request.checksum_crc32_c(b64(crc)),
                PartChecksum::Md5 => request.content_md5(held::md5_base64(&bytes)),
            };
            let out = request
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| SendFailure::Request(Box::new(e)))?;
            Ok((out, crc))
        })
        .await;
        let (out, crc) = sent.map_err(|gave_up| {
            send_failed(gave_up, |failed| {
                if is_no_such_upload(&failed.error) {
                    return self.gone(&format!("part {number}"));
                }
                UploadError::Part {
                    part: number,
                    attempts: failed.attempts,
                    reason: describe(&failed.error),
                }
            })
        })?;
        let record = PartRecord {
            etag: out.e_tag().unwrap_or_default().to_string(),
            crc32c: crc,
            size: len,
        };
        let done = {
            let mut journal = lock(journal);
            journal.parts.insert(number, record);
            journal.save(journal_path)?;
            journal.bytes_done()
        };
        self.reporter.report(Event::PartDone {
            input: self.name(),
            part: number,
            bytes: len,
        });
        self.reporter.report(Event::UploadProgress {
            input: self.name(),
            bytes_done: done,
            bytes_total: size,
            percent: (done as f64 * 1000.0 / size.max(1) as f64).round() / 10.0,
        });
        Ok(())
    }

    async fn complete(&self, journal: &Journal, size: u64) -> Result<(), UploadError> {
        let parts: Vec<CompletedPart> = journal
            .parts
            .iter()
            .map(|(n, p)| {
                let part = CompletedPart::builder()
                    .part_number(*n as i32)
                    .e_tag(&p.etag);
                match journal.part_checksum {
                    PartChecksum::Crc32c => part.checksum_crc32_c(b64(p.crc32c)),
                    PartChecksum::Md5 => part,
                }
                .build()
            })
            .collect();
        let what = format!("completing the upload to {}", self.item.url());
        let parts = &parts;
        let completed = retry(self.policy, &what, || async move {
            self.data
                .complete_multipart_upload()
                .bucket(&self.item.bucket)
                .key(&self.item.key)
                .upload_id(&journal.upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                )
                .send()
                .await
                .map_err(CompleteFailure)
        })
        .await;
        completed.map_err(|gave_up| {
            let CompleteFailure(e) = gave_up.error;
            if is_no_such_upload(&e) {
                return self.gone("completing it");
            }
            let url = self.item.url();
            if CompleteFailure::is_invalid_part(&e) {
                return UploadError::Remote(format!(
                    "cannot complete the upload to {url}: the server holds other parts than this run sent \
                     (InvalidPart after {} attempts), so another process is sending parts to the same \
                     upload; run the same command again",
                    gave_up.attempts
                ));
            }
            UploadError::Remote(format!(
                "cannot complete the upload to {url}: {}",
                failed(e)
            ))
        })?;
        self.verify(size, composite(journal.parts.values().map(|p| p.crc32c)))
            .await
    }

    /// The error for an upload that vanished at `when`; the parts not yet
    /// sent are no longer tried.
    fn gone(&self, when: &str) -> UploadError {
        let why = format!(
            "the upload to {} was completed or aborted by another process meanwhile ({when}: NoSuchUpload)",
            self.item.url()
        );
        let _ = self.vanished.set(why.clone());
        UploadError::Gone(why)
    }

    /// After the upload vanished under this run (`why`): another process
    /// that adopted the same upload completed (or aborted) it. The file
    /// counts as uploaded only if the key now holds exactly its bytes: its
    /// size, and the composite CRC32C of its parts (as laid out by the
    /// same plan, which an adopted upload shares).
    async fn settled_elsewhere(
        &self,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        why: String,
    ) -> Result<(), UploadError> {
        let mut crcs = Vec::new();
        for number in 1..=plan::part_count(size, part_size) {
            let (offset, len) = plan::part_range(size, part_size, number);
            let bytes = read_at(file, offset, len)
                .map_err(|e| UploadError::Source(format!("cannot read part {number}: {e}")))?;
            crcs.push(crc32c::crc32c(&bytes));
        }
        let expected = composite(crcs.into_iter());
        let head = self
            .control
            .head_object()
            .bucket(&self.item.bucket)
            .key(&self.item.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let stored = match &head {
            Ok(h) => format!(
                "{} bytes, CRC32C {}",
                h.content_length().unwrap_or(-1),
                h.checksum_crc32_c().unwrap_or("unknown")
            ),
            Err(e) => format!("nothing readable: {}", describe(e)),
        };
        let same = head.as_ref().is_ok_and(|h| {
            h.content_length() == Some(size as i64) && h.checksum_crc32_c() == Some(&expected)
        });
        tracing::debug!(
            "{}: {why}; it holds {stored}, this file {size} bytes, CRC32C {expected}",
            self.item.url()
        );
        if same {
            return Ok(());
        }
        Err(UploadError::Gone(format!(
            "{why}, and it does not hold this file now ({stored}); run the same command again to upload it"
        )))
    }

    /// An unfinished upload of this key that the server holds, for a run
    /// without a journal of it: the newest whose parts have the sizes
    /// `part_size` gives them (others cannot be completed with this
    /// file's parts; they are left alone). Its parts proven to be the
    /// file's bytes are kept, those that cannot be proven are sent again,
    /// and one proven different refuses the file, leaving the upload in
    /// place.
    async fn adopt(
        &self,
        file: &std::fs::File,
        meta: &std::fs::Metadata,
        part_size: u64,
    ) -> Result<Option<Journal>, UploadError> {
        let url = self.item.url();
        let size = meta.len();
        let mut uploads = list_uploads(self.control, &self.item.bucket, &self.item.key).await?;
        uploads.retain(|u| u.key == self.item.key);
        for upload in uploads.into_iter().rev() {
            let id = &upload.upload_id;
            let on_server = match self.server_parts(id).await {
                Ok(parts) => parts,
                Err(None) => continue,
                Err(Some(e)) => return Err(e),
            };
            if !held::fits_plan(&on_server, size, part_size) {
                tracing::debug!(
                    "{url}: not adopting the upload {id}: its {} parts do not fit {part_size}-byte parts of {size} bytes",
                    on_server.len()
                );
                continue;
            }
            let Some(part_checksum) = held::checksum_of(&on_server) else {
                tracing::debug!(
                    "{url}: not adopting the upload {id}: some of its parts have a CRC32C, others none"
                );
                continue;
            };
            let mut parts = std::collections::BTreeMap::new();
            for part in &on_server {
                let number = part.number;
                let (offset, len) = plan::part_range(size, part_size, number);
                let bytes = read_at(file, offset, len)
                    .map_err(|e| UploadError::Source(format!("cannot read part {number}: {e}")))?;
                match held::check(part, &bytes) {
                    PartCheck::Matches => {
                        let record = PartRecord {
                            etag: part.etag.clone(),
                            crc32c: crc32c::crc32c(&bytes),
                            size: len,
                        };
                        parts.insert(number, record);
                    }
                    PartCheck::Unproven => {}
                    PartCheck::Differs => {
                        return Err(UploadError::Changed(format!(
                            "refusing to resume: part {number} of the unfinished upload to {url} \
                             (upload id {id}) differs from this file, which changed since that upload \
                             started; run `vidpipe upload-chunked --abort` with the same source and \
                             destination, then upload again"
                        )))
                    }
                }
            }
            tracing::debug!(
                "{url}: adopted the upload {id} started {}s ago: {} of its {} parts proven to be this file's, the others are sent again",
                upload.age_seconds,
                parts.len(),
                on_server.len()
            );
            self.reporter.report(Event::UploadAdopted {
                input: self.name(),
                url: url.clone(),
                upload_id: id.clone(),
                parts_held: on_server.len() as u32,
                parts_reused: parts.len() as u32,
            });
            return Ok(Some(Journal {
                source: self.item.source.clone(),
                source_size: size,
                source_mtime: mtime_ns(meta),
                bucket: self.item.bucket.clone(),
                key: self.item.key.clone(),
                upload_id: upload.upload_id,
                part_size,
                part_checksum,
                parts,
            }));
        }
        Ok(None)
    }

    /// Checks the stored object's size and its CRC32C: `expected` is the
    /// whole-object value for a single PUT, the composite `crc-N` for a
    /// multipart upload. A server that reports no checksum (or the other
    /// kind) is checked on size only; every part was checksummed on arrival.
    async fn verify(&self, size: u64, expected: String) -> Result<(), UploadError> {
        let head = self
            .control
            .head_object()
            .bucket(&self.item.bucket)
            .key(&self.item.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| {
                UploadError::Verify(format!(
                    "cannot read back {}: {}",
                    self.item.url(),
                    failed(e)
                ))
            })?;
        let stored = head.content_length().unwrap_or(-1);
        if stored != size as i64 {
            return Err(UploadError::Verify(format!(
                "{} holds {stored} bytes, the source {size}",
                self.item.url()
            )));
        }
        tracing::debug!(
            "{}: stored {stored} bytes, server CRC32C {:?}",
            self.item.url(),
            head.checksum_crc32_c()
        );
        if let Some(reported) = head.checksum_crc32_c() {
            if reported.contains('-') == expected.contains('-') && reported != expected {
                return Err(UploadError::Verify(format!(
                    "{} reports CRC32C {reported}, the bytes sent give {expected}",
                    self.item.url()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::list_parts::ListPartsError;

    #[test]
    fn journal_errors_are_local_and_name_the_journal_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A journal path below a plain file cannot be written.
        let blocker = dir.path().join("uploads");
        std::fs::write(&blocker, b"not a directory").expect("write");
        let path = blocker.join("ab.json");
        let journal = Journal {
            source: "a.bin".into(),
            source_size: 1,
            source_mtime: 0,
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u".into(),
            part_size: 1,
            part_checksum: PartChecksum::Crc32c,
            parts: Default::default(),
        };
        let e = UploadError::from(journal.save(&path).expect_err("cannot write"));
        assert!(matches!(e, UploadError::Journal(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{}: cannot write the state file", path.display())),
            "{text}"
        );
    }

    #[test]
    fn unchanged_notices_a_new_size_or_mtime_of_the_open_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("src.bin");
        std::fs::write(&path, b"0123456789").expect("write");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let before = file.metadata().expect("stat");
        assert!(unchanged(&file, &before).is_ok());

        let later = before.modified().expect("mtime") + std::time::Duration::from_secs(5);
        file.set_modified(later).expect("touch");
        let e = unchanged(&file, &before).expect_err("new mtime");
        assert!(matches!(e, UploadError::Changed(_)), "{e:?}");
        assert_eq!(e.to_string(), "changed while it was being uploaded");

        file.set_modified(before.modified().expect("mtime"))
            .expect("restore mtime");
        assert!(unchanged(&file, &before).is_ok());
        file.set_len(11).expect("grow");
        file.set_modified(before.modified().expect("mtime"))
            .expect("restore mtime");
        let e = unchanged(&file, &before).expect_err("new size");
        assert!(matches!(e, UploadError::Changed(_)), "{e:?}");
    }

    fn answer(status: u16, code: &str) -> SdkError<ListPartsError> {
        let err = ListPartsError::generic(ErrorMetadata::builder().code(code).build());
        let raw = aws_sdk_s3::config::http::HttpResponse::new(
            status.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    #[test]
    fn is_no_such_upload_recognises_only_a_missing_upload() {
        assert!(is_no_such_upload(&answer(404, "NoSuchUpload")));
        assert!(!is_no_such_upload(&answer(404, "NoSuchKey")));
        assert!(!is_no_such_upload(&answer(500, "InternalError")));
        let timeout: SdkError<ListPartsError> = SdkError::timeout_error("slow");
        assert!(!is_no_such_upload(&timeout));
    }
}
