//! Running `upload-chunked`: sources to destination keys, then the engine.
//!
//! One file to `s3://bucket/key` keeps that key; otherwise every file goes
//! under the prefix by name, and a directory's files keep their paths below
//! the directory's name. Journals live in the state directory so a re-run of
//! the same command resumes.

use super::{fail, Outcome, UploadArgs};
use std::path::{Path, PathBuf};
use vidpipe::progress::{Event, Reporter};
use vidpipe::storage::{S3Options, S3Session};
use vidpipe::upload::{self, plan, upload_all, UploadError, UploadItem, UploadSettings};
use vidpipe::CancelFlag;

/// Validated `upload-chunked` arguments, or a usage error.
pub fn settings(args: &UploadArgs) -> Result<UploadSettings, String> {
    let part_size = plan::parse_size(&args.part_size)
        .and_then(plan::check_part_size)
        .map_err(|e| format!("--part-size (VIDPIPE_PART_SIZE): {e}"))?;
    if !(1..=1000).contains(&args.concurrency) {
        return Err("--concurrency must be between 1 and 1000".into());
    }
    if args.attempts == 0 {
        return Err("--attempts must be at least 1".into());
    }
    if args.list_incomplete && args.paths.len() != 1 {
        return Err("--list-incomplete takes only the destination, s3://bucket/prefix/".into());
    }
    if !args.list_incomplete && args.paths.len() < 2 {
        return Err("give at least one source and the destination: SRC... DEST".into());
    }
    if let Some(p) = &args.presign {
        let secs = vidpipe::units::parse_seconds(p).map_err(|e| format!("--presign: {e}"))?;
        if !(1.0..=7.0 * 86400.0).contains(&secs) {
            return Err("--presign must be between 1s and 7d".into());
        }
    }
    Ok(UploadSettings {
        part_size,
        concurrency: args.concurrency,
        attempts: args.attempts,
    })
}

/// The journal directory: see [`vidpipe::state::StateDirs`].
fn journal_dir() -> PathBuf {
    vidpipe::state::StateDirs::new(super::state_root()).upload_journals()
}

/// Uploads every source.
pub fn run(
    args: &UploadArgs,
    settings: &UploadSettings,
    s3: &S3Options,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    chatty: bool,
    json: bool,
) -> Result<Outcome, String> {
    let (dest, sources) = args.paths.split_last().ok_or("need SRC... DEST")?;
    let rest = dest.strip_prefix("s3://").ok_or_else(|| {
        format!("destination `{dest}` must be s3://bucket/key or s3://bucket/prefix/")
    })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let mut failed = 0usize;
    let mut items = Vec::new();
    let single = sources.len() == 1
        && Path::new(&sources[0]).is_file()
        && !key.is_empty()
        && !key.ends_with('/');
    for source in sources {
        let path = Path::new(source);
        match std::fs::metadata(path) {
            Err(e) => {
                fail(reporter, source, &vidpipe::inputs::describe_io(&e));
                failed += 1;
            }
            Ok(_) if single => items.push(item(path, bucket, key.to_string())),
            Ok(meta) if meta.is_dir() => {
                let base = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                    match entry {
                        Ok(e) if e.file_type().is_file() => {
                            let rel = e.path().strip_prefix(path).unwrap_or(e.path());
                            let rel = rel.to_string_lossy().replace('\\', "/");
                            items.push(item(
                                e.path(),
                                bucket,
                                format!("{}{base}/{rel}", prefix(key)),
                            ));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let at = e.path().unwrap_or(path).display().to_string();
                            fail(
                                reporter,
                                &at,
                                &e.io_error()
                                    .map(vidpipe::inputs::describe_io)
                                    .unwrap_or_else(|| e.to_string()),
                            );
                            failed += 1;
                        }
                    }
                }
            }
            Ok(_) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                items.push(item(path, bucket, format!("{}{name}", prefix(key))));
            }
        }
    }
    let session =
        S3Session::connect(s3).map_err(|e| format!("cannot set up the S3 client: {e}"))?;
    let journals = journal_dir();
    if args.status {
        return Ok(show_status(&session, &items, &journals, args.json, failed));
    }
    if args.abort {
        for item in &items {
            match upload::abort(&session, item, &journals) {
                Ok(true) => eprintln!(
                    "aborted the upload of {} to {}",
                    item.source.display(),
                    item.url()
                ),
                Ok(false) => eprintln!(
                    "nothing to abort for {} ({})",
                    item.source.display(),
                    item.url()
                ),
                Err(e) => {
                    fail(reporter, &item.source.display().to_string(), &e.to_string());
                    failed += 1;
                }
            }
        }
        return Ok(if failed > 0 {
            Outcome::SomeFailed
        } else {
            Outcome::Success
        });
    }
    let results = upload_all(&session, &items, settings, &journals, reporter, cancel);
    let mut interrupted = false;
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(done) => {
                if chatty {
                    let resumed = if done.parts_resumed > 0 {
                        format!(", {} parts resumed", done.parts_resumed)
                    } else {
                        String::new()
                    };
                    eprintln!(
                        "uploaded {} -> {} ({} bytes{resumed})",
                        item.source.display(),
                        item.url(),
                        done.bytes
                    );
                }
                if let Some(duration) = &args.presign {
                    let secs = vidpipe::units::parse_seconds(duration).unwrap_or(3600.0);
                    match session.presign_get(
                        &item.bucket,
                        &item.key,
                        std::time::Duration::from_secs_f64(secs),
                    ) {
                        Ok(url) => announce_presigned(reporter, json, item, url),
                        Err(e) => {
                            fail(
                                reporter,
                                &item.source.display().to_string(),
                                &format!("cannot presign: {e}"),
                            );
                            failed += 1;
                        }
                    }
                }
            }
            Err(UploadError::Interrupted) => interrupted = true,
            Err(e) => {
                eprintln!("error: {}: {e}", item.source.display());
                failed += 1;
            }
        }
    }
    if interrupted {
        eprintln!(
            "interrupted: the upload journals are kept in {}; run the same command again to resume",
            journals.display()
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    })
}

/// A presigned URL goes to stdout: an event in JSON mode, else a plain line
/// a script can capture (also with -q: it was asked for).
fn announce_presigned(reporter: &dyn Reporter, json: bool, item: &UploadItem, url: String) {
    if json {
        reporter.report(Event::Presigned {
            input: item.source.display().to_string(),
            url,
        });
    } else {
        println!("{url}");
    }
}

fn show_status(
    session: &S3Session,
    items: &[UploadItem],
    journals: &Path,
    json: bool,
    mut failed: usize,
) -> Outcome {
    for item in items {
        match upload::status(session, item, journals) {
            Ok(s) if json => println!("{}", serde_json::to_string(&s).unwrap_or_default()),
            Ok(s) => match &s.upload_id {
                None => println!("{} -> {}: no upload in progress", s.source.display(), s.url),
                Some(id) => println!(
                    "{} -> {}: {}/{} parts ({} of {} bytes) journaled, {} on the server, upload id {id}",
                    s.source.display(),
                    s.url,
                    s.parts_journaled,
                    s.parts_total,
                    s.bytes_done,
                    s.bytes_total,
                    s.parts_on_server.map_or("none (expired or aborted)".to_string(), |n| n.to_string()),
                ),
            },
            Err(e) => {
                eprintln!("error: {}: {e}", item.source.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}

/// `--list-incomplete s3://bucket/prefix/`.
pub fn list_incomplete(dest: &str, s3: &S3Options, json: bool) -> Result<Outcome, String> {
    let rest = dest
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{dest}` must be s3://bucket/prefix/"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let session =
        S3Session::connect(s3).map_err(|e| format!("cannot set up the S3 client: {e}"))?;
    match upload::list_incomplete(&session, bucket, prefix) {
        Ok(uploads) => {
            for u in uploads {
                if json {
                    println!("{}", serde_json::to_string(&u).unwrap_or_default());
                } else {
                    println!(
                        "s3://{bucket}/{}  {}  started {} ago",
                        u.key,
                        u.upload_id,
                        human_age(u.age_seconds)
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("error: {dest}: {e}");
            Ok(Outcome::SomeFailed)
        }
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn prefix(key: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        key.to_string()
    } else {
        format!("{key}/")
    }
}

fn item(path: &Path, bucket: &str, key: String) -> UploadItem {
    UploadItem {
        source: path.to_path_buf(),
        bucket: bucket.to_string(),
        key,
    }
}
