//! `vidpipe prune`: cron's cleanup of local directories and bucket
//! prefixes (the engine is [`vidpipe::prune`]), plus incomplete multipart
//! uploads and bucket lifecycle rules.

use super::context::{batch_outcome, count, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{parse_number, usage, Layers};
use super::{Outcome, PruneArgs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use vidpipe::progress::{Count, Event, Reporter};
use vidpipe::prune::tree::{BucketTree, Entry, LocalTree, Tree};
use vidpipe::prune::uploads::{abort_old_uploads, install_lifecycle};
use vidpipe::prune::{self, PruneSettings, Reason, Summary};
use vidpipe::storage::Location;
use vidpipe::units::parse_duration;

/// The hidden clock seam: decide as if it were this time (seconds since
/// the epoch). For tests and for "what would go at 3am" dry runs.
const NOW_VARIABLE: &str = "VIDPIPE_PRUNE_NOW";

/// Everything `prune` needs to run.
#[derive(Debug, Clone)]
pub struct PruneRun {
    /// The trees to clean, as typed and parsed.
    pub dests: Vec<(String, Location)>,
    /// The engine's settings.
    pub settings: PruneSettings,
    /// Abort old incomplete multipart uploads.
    pub abort_uploads: bool,
    /// Install a lifecycle rule of this many days.
    pub lifecycle: Option<i32>,
    /// `--state-dir`: another local root of bucket outputs' state.
    pub state_dir: Option<PathBuf>,
}

/// Validated settings for `prune`.
pub fn settings(layers: &Layers, args: &PruneArgs) -> Result<PruneRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().prune.as_ref().unwrap_or(&empty);
    let s = layers.section("prune");
    let older_than = s
        .get(
            "older-than",
            args.older_than.as_deref(),
            cfg.older_than.as_ref(),
            parse_duration,
        )?
        .ok_or_else(|| {
            usage("give --older-than, the age beyond which files may go (e.g. 10m, 2h, 7d)")
        })?;
    let expire = s.switch("expire", args.expire, cfg.expire.as_ref())?;
    let allow_root = s.switch("allow-root", args.allow_root, cfg.allow_root.as_ref())?;
    let lifecycle = s.get(
        "lifecycle",
        args.lifecycle.as_deref(),
        cfg.lifecycle.as_ref(),
        |v| parse_number(v, 1..=36500),
    )?;
    let abort_uploads = s.switch(
        "abort-uploads",
        args.abort_uploads,
        cfg.abort_uploads.as_ref(),
    )?;
    let mut dests = Vec::new();
    for text in &args.dests {
        let location = Location::parse(text).map_err(|reason| SettingsError::Flag {
            flag: "DEST".into(),
            reason,
        })?;
        if expire && !allow_root {
            refuse_root(text, &location)?;
        }
        dests.push((text.clone(), location));
    }
    let any_bucket = dests.iter().any(|(_, l)| l.is_s3());
    if !any_bucket && (lifecycle.is_some() || abort_uploads) {
        let flag = if abort_uploads {
            "--abort-uploads"
        } else {
            "--lifecycle"
        };
        return Err(usage(format!(
            "{flag} works on s3:// destinations; none was given"
        )));
    }
    Ok(PruneRun {
        dests,
        settings: PruneSettings {
            older_than,
            dry_run: s.switch("dry-run", args.dry_run, cfg.dry_run.as_ref())?,
            expire,
            now: now()?,
        },
        abort_uploads,
        lifecycle,
        state_dir: s.state_dir(args.state_dir.as_deref(), cfg.state_dir.as_ref())?,
    })
}

/// `--expire` on `/`, the home directory or a whole bucket is almost
/// certainly a mistake: refused unless `--allow-root`.
fn refuse_root(text: &str, location: &Location) -> Result<(), SettingsError> {
    let refused = match location {
        Location::S3 { prefix, .. } => prefix.trim_matches('/').is_empty(),
        Location::Local(dir) => {
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let home = home.map(|h| std::fs::canonicalize(&h).unwrap_or(h));
            dir.parent().is_none() || Some(&dir) == home.as_ref()
        }
    };
    if refused {
        return Err(usage(format!(
            "--expire on `{text}` would delete everything old under it; give a narrower DEST, or --allow-root if that is really meant"
        )));
    }
    Ok(())
}

fn now() -> Result<SystemTime, SettingsError> {
    let Ok(text) = std::env::var(NOW_VARIABLE) else {
        return Ok(SystemTime::now());
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| SystemTime::UNIX_EPOCH + d)
        .ok_or_else(|| {
            usage(format!(
                "{NOW_VARIABLE}: `{text}` is not seconds since 1970"
            ))
        })
}

/// Prunes every DEST; one failing does not stop the others.
pub fn run(run: &PruneRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let listing = DryRunListing {
        inner: ctx.reporter(),
        show: run.settings.dry_run && !ctx.json,
    };
    let mut failed = 0;
    for (text, location) in &run.dests {
        let tree = match open(ctx, location) {
            Ok(tree) => tree,
            Err(reason) => {
                ctx.fail(text, &reason);
                failed += 1;
                continue;
            }
        };
        let roots = std::iter::once(ctx.state.clone())
            .chain(run.state_dir.as_ref().map(vidpipe::state::StateDirs::new));
        let elsewhere: Vec<Entry> = roots
            .flat_map(|root| root.for_output(location).kept_elsewhere())
            .map(|(key, modified)| Entry {
                key,
                bytes: 0,
                modified,
            })
            .collect();
        let summary = match prune::prune(tree.as_ref(), &run.settings, &elsewhere, &listing) {
            Ok(summary) => summary,
            Err(e) => {
                ctx.fail(text, &vidpipe::inputs::describe_io(&e));
                failed += 1;
                continue;
            }
        };
        let aborted = match (location, run.abort_uploads) {
            (Location::S3 { bucket, prefix }, true) => {
                match abort_uploads(ctx, run, bucket, prefix, &listing) {
                    Ok(n) => n,
                    Err(reason) => {
                        ctx.fail(text, &reason);
                        failed += 1;
                        0
                    }
                }
            }
            _ => 0,
        };
        if let (Location::S3 { bucket, prefix }, Some(days)) = (location, run.lifecycle) {
            failed += usize::from(!lifecycle(ctx, run, bucket, prefix, days));
        }
        failed += usize::from(summary.failed > 0);
        report_summary(ctx, text, run.settings.dry_run, &summary, aborted);
    }
    Ok(batch_outcome(failed))
}

fn open(ctx: &Ctx, location: &Location) -> Result<Box<dyn Tree>, String> {
    Ok(match location {
        Location::Local(dir) => Box::new(
            LocalTree::open(dir)
                .map_err(|e| format!("cannot prune: {}", vidpipe::inputs::describe_io(&e)))?,
        ),
        Location::S3 { bucket, prefix } => {
            let session = ctx.s3().map_err(|e| e.to_string())?;
            Box::new(BucketTree::new(session, bucket, prefix))
        }
    })
}

fn abort_uploads(
    ctx: &Ctx,
    run: &PruneRun,
    bucket: &str,
    prefix: &str,
    reporter: &dyn Reporter,
) -> Result<u64, String> {
    let session = ctx.s3().map_err(|e| e.to_string())?;
    let settings = &run.settings;
    let done = abort_old_uploads(
        &session,
        bucket,
        prefix,
        settings.older_than,
        settings.now,
        settings.dry_run,
        &ctx.state.upload_journals(),
    )?;
    for (url, upload_id) in &done.aborted {
        reporter.report(Event::UploadAborted {
            url: url.clone(),
            upload_id: upload_id.clone(),
            dry_run: settings.dry_run,
        });
    }
    if done.kept > 0 {
        ctx.say(format!(
            "s3://{bucket}/{prefix}: {} younger than --older-than kept",
            count(done.kept, "incomplete upload")
        ));
    }
    Ok(done.aborted.len() as u64)
}

/// Installs the lifecycle rule; `false` when it could not be.
fn lifecycle(ctx: &Ctx, run: &PruneRun, bucket: &str, prefix: &str, days: i32) -> bool {
    let url = format!("s3://{bucket}/{prefix}");
    if run.settings.dry_run {
        ctx.say(format!(
            "{url}: would install a lifecycle rule of {days} days"
        ));
        return true;
    }
    let installed = ctx
        .s3()
        .map_err(|e| e.to_string())
        .and_then(|session| install_lifecycle(&session, bucket, prefix, days, run.settings.expire));
    match installed {
        Ok(id) => {
            let what = if run.settings.expire {
                "abort incomplete uploads and delete objects"
            } else {
                "abort incomplete uploads"
            };
            ctx.say(format!(
                "{url}: lifecycle rule `{id}` installed: {what} after {}",
                count(days as u64, "day")
            ));
            true
        }
        Err(reason) => {
            ctx.fail(&url, &reason);
            false
        }
    }
}

/// The `summary` event and, for a person, one line per destination.
fn report_summary(ctx: &Ctx, dest: &str, dry_run: bool, summary: &Summary, aborted: u64) {
    let by_label = |map: &std::collections::BTreeMap<Reason, Count>| {
        map.iter().map(|(r, c)| (r.label(), *c)).collect()
    };
    ctx.reporter.report(Event::PruneSummary {
        dest: dest.to_string(),
        dry_run,
        deleted: by_label(&summary.deleted),
        kept: by_label(&summary.kept),
        uploads_aborted: aborted,
        failed: summary.failed,
    });
    let part = |map: &std::collections::BTreeMap<Reason, Count>, total: Count| {
        let reasons: Vec<String> = map
            .iter()
            .map(|(r, c)| format!("{} {}", c.files, r.label()))
            .collect();
        let detail = if reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", reasons.join(", "))
        };
        format!(
            "{} ({}){detail}",
            count(total.files, "file"),
            indicatif::HumanBytes(total.bytes)
        )
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut line = format!(
        "{dest}: {verb} {}; kept {}",
        part(&summary.deleted, summary.deleted_total()),
        part(&summary.kept, summary.kept_total())
    );
    if aborted > 0 {
        let verb = if dry_run { "would abort" } else { "aborted" };
        line.push_str(&format!("; {verb} {}", count(aborted, "incomplete upload")));
    }
    ctx.say(line);
}

/// Shows a dry run's decisions on stdout for a person (`--progress json`
/// has them as events), and passes every event on.
struct DryRunListing<'a> {
    inner: &'a dyn Reporter,
    show: bool,
}

impl Reporter for DryRunListing<'_> {
    fn report(&self, event: Event) {
        if self.show {
            match &event {
                Event::Deleted { path, reason, .. } => {
                    println!("would delete  {path}  ({})", describe(reason));
                }
                Event::UploadAborted { url, upload_id, .. } => {
                    println!("would abort   {url}  (incomplete upload {upload_id})");
                }
                _ => {}
            }
        }
        self.inner.report(event);
    }
}

/// A reason label in words.
fn describe(label: &str) -> String {
    serde_json::from_value::<Reason>(serde_json::Value::String(label.to_string()))
        .map(|r| r.describe().to_string())
        .unwrap_or_else(|_| label.to_string())
}
