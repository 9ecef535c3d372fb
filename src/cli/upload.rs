//! `vidpipe upload-chunked`: settings, sources to destination keys, then
//! the engine (or `--status`, `--abort`, `--list-incomplete`).
//!
//! One file to `s3://bucket/key` keeps that key; otherwise every file goes
//! under the prefix by name, and a directory's files keep their paths below
//! the directory's name. Journals live in the state directory so a re-run of
//! the same command resumes. `--shard K/N` keeps the files whose path below
//! their source argument hashes to shard K, for every action but
//! `--list-incomplete`.

use super::context::{batch_outcome, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{parse_number, parse_seconds_in, usage, Layers};
use super::{Outcome, UploadArgs};
use std::path::Path;
use std::time::Duration;
use vidpipe::inputs::{relative_name, Shard, Share};
use vidpipe::progress::{Event, Reporter};
use vidpipe::storage::{kind, ObjectUrl, S3Session};
use vidpipe::units::parse_size;
use vidpipe::upload::{self, plan, upload_all, UploadError, UploadItem, UploadSettings};

/// Everything `upload-chunked` needs to run.
#[derive(Debug, Clone)]
pub struct UploadRun {
    /// What to do.
    pub action: Action,
    /// Part size, concurrency, attempts.
    pub settings: UploadSettings,
    /// Print a presigned GET URL valid this long after each upload.
    pub presign: Option<Duration>,
    /// JSON output for `--status` and `--list-incomplete`.
    pub json: bool,
    /// This machine's share of the files.
    pub shard: Option<Shard>,
}

/// The four things `upload-chunked` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Upload the sources.
    Upload(Transfer),
    /// Show each source's journal and the parts the server holds.
    Status(Transfer),
    /// Abort each source's unfinished upload.
    Abort(Transfer),
    /// List the unfinished uploads under a prefix.
    ListIncomplete(ObjectUrl),
}

/// Sources and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Files and directories as given.
    pub sources: Vec<String>,
    /// `s3://bucket/key` (one file) or `s3://bucket/prefix/`.
    pub dest: ObjectUrl,
}

/// Validated settings for `upload-chunked`.
pub fn settings(layers: &Layers, args: &UploadArgs) -> Result<UploadRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().upload_chunked.as_ref().unwrap_or(&empty);
    let s = layers.section("upload-chunked");
    let settings = UploadSettings {
        part_size: s.or(
            "part-size",
            args.part_size.as_deref(),
            cfg.part_size.as_ref(),
            8 << 20,
            |v| parse_size(v).and_then(plan::check_part_size),
        )?,
        concurrency: s.or(
            "concurrency",
            args.concurrency.as_deref(),
            cfg.concurrency.as_ref(),
            8,
            |v| parse_number(v, 1..=1000),
        )?,
        attempts: s.or(
            "attempts",
            args.attempts.as_deref(),
            cfg.attempts.as_ref(),
            6,
            |v| parse_number(v, 1..=100),
        )?,
        content_type: s.get(
            "content-type",
            args.content_type.as_deref(),
            cfg.content_type.as_ref(),
            kind::parse_content_type,
        )?,
    };
    let presign = s.get(
        "presign",
        args.presign.as_deref(),
        cfg.presign.as_ref(),
        |v| parse_seconds_in(v, "presign", 1.0..=7.0 * 86400.0).map(Duration::from_secs_f64),
    )?;
    Ok(UploadRun {
        action: action(args)?,
        settings,
        presign,
        json: s.switch("json", args.json, cfg.json.as_ref())?,
        shard: s.get(
            "shard",
            args.shard.as_deref(),
            cfg.shard.as_ref(),
            Shard::parse,
        )?,
    })
}

fn action(args: &UploadArgs) -> Result<Action, SettingsError> {
    let bad_dest = |reason: String| SettingsError::Flag {
        flag: "destination".into(),
        reason,
    };
    let Some((dest, sources)) = args.paths.split_last() else {
        return Err(usage("give the sources and the destination: SRC... DEST"));
    };
    let dest = ObjectUrl::parse(dest).map_err(bad_dest)?;
    if args.list_incomplete {
        if !sources.is_empty() {
            return Err(usage(
                "--list-incomplete takes only the destination, s3://bucket/prefix/",
            ));
        }
        return Ok(Action::ListIncomplete(dest));
    }
    if sources.is_empty() {
        return Err(usage(
            "give at least one source and the destination: SRC... DEST",
        ));
    }
    if sources.len() > 1 && !dest.is_prefix() {
        return Err(bad_dest(format!(
            "{} sources cannot all go to the one key `{dest}`: end the destination with `/` to upload under a prefix",
            sources.len()
        )));
    }
    let transfer = Transfer {
        sources: sources.to_vec(),
        dest,
    };
    Ok(if args.status {
        Action::Status(transfer)
    } else if args.abort {
        Action::Abort(transfer)
    } else {
        Action::Upload(transfer)
    })
}

/// Runs `upload-chunked`.
pub fn run(run: &UploadRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let session = ctx.s3()?;
    let journals = ctx.state.upload_journals();
    match &run.action {
        Action::ListIncomplete(prefix) => Ok(list_incomplete(ctx, &session, prefix, run.json)),
        Action::Status(transfer) => {
            let (items, _, failed) = shard_of(run, ctx, transfer, false);
            Ok(show_status(
                ctx, &session, &items, &journals, run.json, failed,
            ))
        }
        Action::Abort(transfer) => {
            // The server may hold an upload whose file or journal is gone.
            let (items, _, failed) = shard_of(run, ctx, transfer, true);
            Ok(abort_all(ctx, &session, &items, &journals, failed))
        }
        Action::Upload(transfer) => {
            let (items, share, failed) = shard_of(run, ctx, transfer, false);
            Ok(upload_items(
                run, ctx, &session, &items, share, &journals, failed,
            ))
        }
    }
}

/// The files of `transfer` that this machine's shard takes, what it kept
/// of how many, and how many sources failed. A shard left with nothing
/// while others got files is said as a warning, not a failure.
fn shard_of(
    run: &UploadRun,
    ctx: &Ctx,
    transfer: &Transfer,
    missing_ok: bool,
) -> (Vec<UploadItem>, Share, usize) {
    let (named, failed) = items(ctx, transfer, missing_ok);
    let (kept, share) = Shard::keep(run.shard, named, |(_, name)| name.as_str());
    if let Some(message) = share.left_empty() {
        ctx.note(&transfer.sources.join(", "), message);
    }
    let kept = kept.into_iter().map(|(item, _)| item).collect();
    (kept, share, failed)
}

/// Every file under the sources with its key and its name for `--shard`
/// (its path below the source argument: a file argument's file name);
/// problems are reported and counted. With `missing_ok` a source that does
/// not exist still maps to its key, as a file would.
fn items(ctx: &Ctx, transfer: &Transfer, missing_ok: bool) -> (Vec<(UploadItem, String)>, usize) {
    let dest = &transfer.dest;
    let missing = |path: &Path| {
        missing_ok
            && matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    };
    let single = transfer.sources.len() == 1 && !dest.is_prefix() && {
        let path = Path::new(&transfer.sources[0]);
        path.is_file() || missing(path)
    };
    let prefix = dest.as_prefix();
    let mut failed = 0usize;
    let mut items = Vec::new();
    for source in &transfer.sources {
        let path = Path::new(source);
        match std::fs::metadata(path) {
            Err(_) if single && missing(path) => {
                items.push(item(path, &dest.bucket, dest.key.clone()));
            }
            Err(_) if missing(path) => {
                let name = file_name(path);
                items.push(item(path, &dest.bucket, format!("{prefix}{name}")));
            }
            Err(e) => {
                ctx.fail(source, &vidpipe::inputs::describe_io(&e));
                failed += 1;
            }
            Ok(_) if single => items.push(item(path, &dest.bucket, dest.key.clone())),
            Ok(meta) if meta.is_dir() => {
                failed += walk_dir(ctx, path, &dest.bucket, &prefix, &mut items);
            }
            Ok(_) => {
                let name = file_name(path);
                items.push(item(path, &dest.bucket, format!("{prefix}{name}")));
            }
        }
    }
    (items, failed)
}

/// A directory's files under `prefix/<dir name>/`, or directly under
/// `prefix` when the directory was given with a trailing slash (`DIR/`, as
/// rsync and rclone read it); returns how many entries could not be read
/// (reported).
fn walk_dir(
    ctx: &Ctx,
    dir: &Path,
    bucket: &str,
    prefix: &str,
    items: &mut Vec<(UploadItem, String)>,
) -> usize {
    let contents_only = dir.as_os_str().to_string_lossy().ends_with('/');
    let base = if contents_only {
        String::new()
    } else {
        format!("{}/", file_name(dir))
    };
    let mut failed = 0;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let rel = relative_name(e.path(), dir);
                let key = format!("{prefix}{base}{rel}");
                items.push((item(e.path(), bucket, key).0, rel));
            }
            Ok(_) => {}
            Err(e) => {
                let at = e.path().unwrap_or(dir).display().to_string();
                let reason = e
                    .io_error()
                    .map(vidpipe::inputs::describe_io)
                    .unwrap_or_else(|| e.to_string());
                ctx.fail(&at, &reason);
                failed += 1;
            }
        }
    }
    failed
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn upload_items(
    run: &UploadRun,
    ctx: &Ctx,
    session: &S3Session,
    items: &[UploadItem],
    share: Share,
    journals: &Path,
    mut failed: usize,
) -> Outcome {
    let results = upload_all(
        session,
        items,
        share,
        &run.settings,
        journals,
        ctx.reporter(),
        &ctx.cancel,
    );
    let mut interrupted = false;
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(done) => {
                let resumed = match done.parts_resumed {
                    0 => String::new(),
                    n => format!(", {n} parts resumed"),
                };
                ctx.say(format!(
                    "uploaded {} -> {} ({} bytes{resumed})",
                    item.source.display(),
                    item.url(),
                    done.bytes
                ));
                if let Some(valid) = run.presign {
                    match session.presign_get(&item.bucket, &item.key, valid) {
                        Ok(url) => announce_presigned(ctx.reporter(), ctx.json, item, url),
                        Err(e) => {
                            ctx.fail(
                                &item.source.display().to_string(),
                                &format!("cannot presign: {e}"),
                            );
                            failed += 1;
                        }
                    }
                }
            }
            Err(UploadError::Interrupted) => interrupted = true,
            // The engine reported it as an `error` event.
            Err(_) => failed += 1,
        }
    }
    if interrupted {
        eprintln!(
            "interrupted: the upload journals are kept in {}; run the same command again to resume",
            journals.display()
        );
        return Outcome::Interrupted;
    }
    batch_outcome(failed)
}

fn abort_all(
    ctx: &Ctx,
    session: &S3Session,
    items: &[UploadItem],
    journals: &Path,
    mut failed: usize,
) -> Outcome {
    for item in items {
        let source = item.source.display();
        match upload::abort(session, item, journals) {
            Ok(done) if done.upload_ids.is_empty() => eprintln!(
                "nothing to abort for {source}: the server holds no unfinished upload to {}{}",
                item.url(),
                if done.journal_forgotten {
                    " (its journal is forgotten)"
                } else {
                    ""
                }
            ),
            Ok(done) => {
                for id in &done.upload_ids {
                    eprintln!(
                        "aborted the upload of {source} to {} (upload id {id})",
                        item.url()
                    );
                }
            }
            Err(e) => {
                ctx.fail(&source.to_string(), &e.to_string());
                failed += 1;
            }
        }
    }
    batch_outcome(failed)
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
    ctx: &Ctx,
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
                ctx.fail(&item.source.display().to_string(), &e.to_string());
                failed += 1;
            }
        }
    }
    batch_outcome(failed)
}

/// `--list-incomplete s3://bucket/prefix/`.
fn list_incomplete(ctx: &Ctx, session: &S3Session, prefix: &ObjectUrl, json: bool) -> Outcome {
    let bucket = &prefix.bucket;
    match upload::list_incomplete(session, bucket, &prefix.key) {
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
            Outcome::Success
        }
        Err(e) => {
            ctx.fail(&prefix.to_string(), &e.to_string());
            Outcome::SomeFailed
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

/// The upload of `path` to `key`, named for `--shard` by its file name
/// (a file in a directory is renamed by [`walk_dir`]).
fn item(path: &Path, bucket: &str, key: String) -> (UploadItem, String) {
    let upload = UploadItem {
        source: path.to_path_buf(),
        bucket: bucket.to_string(),
        key,
    };
    (upload, file_name(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::layers::testing::{self, error};
    use crate::cli::Command;

    fn settings_of(args: &[&str], yaml: &str) -> Result<UploadRun, SettingsError> {
        fn pick(command: &Command) -> Option<&UploadArgs> {
            match command {
                Command::UploadChunked(args) => Some(args),
                _ => None,
            }
        }
        testing::settings_of("upload-chunked", args, yaml, pick, settings)
    }

    #[test]
    fn the_section_sets_defaults_that_flags_override() {
        let run = settings_of(&["a.bin", "s3://media/a.bin"], "").expect("valid");
        assert_eq!(
            (
                run.settings.part_size,
                run.settings.concurrency,
                run.settings.attempts
            ),
            (8 << 20, 8, 6)
        );
        assert_eq!(run.presign, None);
        let yaml =
            "upload-chunked:\n  part-size: 16MiB\n  concurrency: 4\n  presign: 1h\n  json: true\n";
        let run =
            settings_of(&["a.bin", "s3://media/a.bin", "--concurrency", "2"], yaml).expect("valid");
        assert_eq!(run.settings.part_size, 16 << 20);
        assert_eq!(run.settings.concurrency, 2);
        assert_eq!(run.presign, Some(Duration::from_secs(3600)));
        assert!(run.json);
        // --presign's help names 7d as the most S3 allows.
        let run = settings_of(&["a", "s3://media/a", "--presign", "7d"], "").expect("7d");
        assert_eq!(run.presign, Some(Duration::from_secs(7 * 86400)));
        let e = error(settings_of(&["a", "s3://media/a", "--presign", "8d"], ""));
        assert!(e.starts_with("--presign: "), "{e}");
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_section() {
        let run = settings_of(&["a", "s3://media/p/"], "").expect("valid");
        assert_eq!(run.shard, None);
        let yaml = "upload-chunked:\n  shard: 3/4\n";
        let run = settings_of(&["a", "s3://media/p/"], yaml).expect("shard");
        assert_eq!(run.shard, Some(Shard { index: 3, count: 4 }));
        let run = settings_of(&["a", "s3://media/p/", "--shard", "1/2"], yaml).expect("flag");
        assert_eq!(run.shard, Some(Shard { index: 1, count: 2 }));
        let e = error(settings_of(&["a", "s3://media/p/", "--shard", "5/4"], ""));
        assert!(e.starts_with("--shard (VIDPIPE_SHARD): "), "{e}");
    }

    #[test]
    fn bad_values_name_their_flag_or_key() {
        let e = error(settings_of(
            &["a", "s3://media/a", "--part-size", "1MiB"],
            "",
        ));
        assert!(e.starts_with("--part-size (VIDPIPE_PART_SIZE): "), "{e}");
        let e = error(settings_of(
            &["a", "s3://media/a"],
            "upload-chunked:\n  attempts: 0\n",
        ));
        assert!(
            e.contains(":2: upload-chunked.attempts: 0 must be between 1 and 100"),
            "{e}"
        );
        let e = error(settings_of(&["a", "s3://Bad_Bucket/a"], ""));
        assert!(e.contains("not a valid bucket name"), "{e}");
        let e = error(settings_of(&["a", "/tmp/x"], ""));
        assert!(e.contains("s3://bucket/key"), "{e}");
    }

    #[test]
    fn content_type_comes_from_the_flag_or_the_section() {
        let run = settings_of(&["a.bin", "s3://media/a.bin"], "").expect("valid");
        assert_eq!(run.settings.content_type, None);
        let yaml = "upload-chunked:\n  content-type: video/mp4\n";
        let run = settings_of(&["a.bin", "s3://media/a.bin"], yaml).expect("valid");
        assert_eq!(run.settings.content_type.as_deref(), Some("video/mp4"));
        let flag = ["a.bin", "s3://media/a.bin", "--content-type", "text/plain"];
        let run = settings_of(&flag, yaml).expect("valid");
        assert_eq!(run.settings.content_type.as_deref(), Some("text/plain"));
        let e = error(settings_of(
            &["a", "s3://media/a", "--content-type", "mp4"],
            "",
        ));
        assert!(e.starts_with("--content-type: "), "{e}");
    }

    #[test]
    fn destinations_and_actions() {
        let e = error(settings_of(&["a", "b", "s3://media/one.bin"], ""));
        assert!(e.contains("end the destination with `/`"), "{e}");
        let run = settings_of(&["a", "b", "s3://media/many/"], "").expect("prefix");
        assert!(matches!(run.action, Action::Upload(ref t) if t.sources.len() == 2));
        let e = error(settings_of(
            &["--list-incomplete", "a", "s3://media/p/"],
            "",
        ));
        assert!(e.contains("takes only the destination"), "{e}");
        let run = settings_of(&["--list-incomplete", "s3://media/p/"], "").expect("list");
        assert!(matches!(run.action, Action::ListIncomplete(ref u) if u.key == "p/"));
        let e = error(settings_of(&["s3://media/p/"], ""));
        assert!(e.contains("at least one source"), "{e}");
        let run = settings_of(&["--abort", "a", "s3://media/a"], "").expect("abort");
        assert!(matches!(run.action, Action::Abort(_)));
    }
}
