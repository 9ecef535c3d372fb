//! What prune does to a bucket beyond its objects: aborting old incomplete
//! multipart uploads, and installing the lifecycle rule that lets the
//! server do the same on its own.

use crate::storage::S3Session;
use crate::upload::{self, journal::Journal};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What `--abort-uploads` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aborted {
    /// `s3://bucket/key` and upload id of each upload aborted (or, in a
    /// dry run, to be aborted).
    pub aborted: Vec<(String, String)>,
    /// Uploads younger than the limit, left alone.
    pub kept: u64,
    /// Local journals forgotten.
    pub journals: u64,
}

/// Aborts the incomplete multipart uploads under `s3://bucket/prefix`
/// started longer than `older_than` before `now`, and forgets their
/// journals in `journal_dir`.
pub fn abort_old_uploads(
    session: &S3Session,
    bucket: &str,
    prefix: &str,
    older_than: Duration,
    now: SystemTime,
    dry_run: bool,
    journal_dir: &Path,
) -> Result<Aborted, String> {
    let mut done = Aborted::default();
    let listed = upload::list_incomplete(session, bucket, prefix).map_err(|e| e.to_string())?;
    for u in listed {
        let old = now.duration_since(u.initiated).unwrap_or_default() >= older_than;
        if !old {
            done.kept += 1;
            continue;
        }
        let url = format!("s3://{bucket}/{}", u.key);
        if dry_run || upload::abort_upload(session, bucket, &u).map_err(|e| e.to_string())? {
            done.aborted.push((url, u.upload_id.clone()));
        }
        if dry_run {
            continue;
        }
        let path = Journal::path_for(journal_dir, bucket, &u.key);
        let ours = matches!(Journal::load(&path), Ok(loaded) if loaded.value.as_ref().is_some_and(|j| j.upload_id == u.upload_id));
        if ours && Journal::remove(&path).is_ok() {
            done.journals += 1;
        }
    }
    Ok(done)
}

/// Installs (or replaces) vidpipe's lifecycle rule for `prefix` on
/// `bucket`: abort incomplete multipart uploads after `days`, and with
/// `expire` also delete objects after `days`. Other rules of the bucket
/// are kept. Fails with a clear message when the server does not support
/// lifecycle configuration.
pub fn install_lifecycle(
    session: &S3Session,
    bucket: &str,
    prefix: &str,
    days: i32,
    expire: bool,
) -> Result<String, String> {
    let id = rule_id(prefix);
    let existing = session.wait(
        session
            .client()
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send(),
    );
    let mut rules: Vec<LifecycleRule> = match existing {
        Ok(answer) => answer.rules().to_vec(),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
        Err(e) => return Err(unsupported_or(bucket, &e)),
    };
    rules.retain(|r| r.id() != Some(id.as_str()));
    let mut rule = LifecycleRule::builder()
        .id(&id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        );
    if expire {
        rule = rule.expiration(LifecycleExpiration::builder().days(days).build());
    }
    rules.push(rule.build().map_err(|e| e.to_string())?);
    let config = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| e.to_string())?;
    session
        .wait(
            session
                .client()
                .put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(config)
                .send(),
        )
        .map_err(|e| unsupported_or(bucket, &e))?;
    Ok(id)
}

/// The id of vidpipe's rule for `prefix`, so a re-run replaces it.
fn rule_id(prefix: &str) -> String {
    let id = format!("vidpipe-prune:{prefix}");
    // S3 allows 255 characters.
    id.chars().take(255).collect()
}

fn unsupported_or<E: ProvideErrorMetadata + std::error::Error + 'static>(
    bucket: &str,
    e: &E,
) -> String {
    match e.code() {
        Some("NotImplemented") | Some("MethodNotAllowed") => format!(
            "the server does not support lifecycle rules on s3://{bucket} ({}); prune from cron instead",
            e.code().unwrap_or_default()
        ),
        Some("AccessDenied") => {
            format!("no permission to change the lifecycle rules of s3://{bucket}")
        }
        _ => format!(
            "cannot set the lifecycle rules of s3://{bucket}: {}",
            crate::storage::retry::describe(e)
        ),
    }
}
