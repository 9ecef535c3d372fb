//! `vidpipe run`: a whole publishing pipeline per input, declared once in
//! a manifest.
//!
//! `settings` loads the manifest (its shape is
//! [`vidpipe::pipeline::manifest`]) and checks all of it before any work:
//! each step's section goes through its subcommand's own `settings` (the
//! same parsers as the flags, errors as `file:line: step.key: reason`), the
//! per-input patterns' placeholders are checked, local inputs must exist
//! and a local output must be writable. `run` expands the inputs as
//! transcode-hls does, keeps this machine's `--shard`, and runs `--jobs`
//! inputs at once, each through [`input`]: its steps in order, each as its
//! subcommand runs ([`step`]). A final `summary` event (and `--report`)
//! says what became of every input.

mod input;
mod step;

use super::context::{batch_outcome, count, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{parse_bool, parse_number, Layers};
use super::{Outcome, RunArgs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use step::PlannedStep;
use vidpipe::config::value_error;
use vidpipe::inputs::{expand, InputItem, Shard};
use vidpipe::pipeline::manifest::Manifest;
use vidpipe::progress::{Event, InputOutcome, Position, RunSummary};
use vidpipe::storage::Location;

/// A validated pipeline, ready to run.
pub struct RunPlan {
    /// The manifest, for messages.
    pub manifest: PathBuf,
    /// Inputs as the manifest lists them.
    pub inputs: Vec<String>,
    /// Where each input's `<stem>/` goes.
    pub output: Location,
    /// `file:line: output` of the manifest, for an output found unusable
    /// once the run starts.
    output_at: String,
    /// The steps, in order.
    steps: Vec<PlannedStep>,
    /// Delete an `s3://` source once every step of it succeeded.
    pub delete_source: bool,
    /// `--shard`.
    pub shard: Option<Shard>,
    /// Inputs at once.
    pub jobs: usize,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--report`.
    pub report: Option<PathBuf>,
}

/// Validated settings for `run`: the whole manifest, checked.
pub fn settings(layers: &Layers, args: &RunArgs) -> Result<RunPlan, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().run.as_ref().unwrap_or(&empty);
    let s = layers.section("run");
    let jobs = s.or("jobs", args.jobs.as_deref(), cfg.jobs.as_ref(), 1, |v| {
        parse_number(v, 1..=256)
    })?;
    let shard = s.get(
        "shard",
        args.shard.as_deref(),
        cfg.shard.as_ref(),
        Shard::parse,
    )?;
    let dry_run = s.switch("dry-run", args.dry_run, cfg.dry_run.as_ref())?;
    let report = s.get("report", args.report.as_deref(), cfg.report.as_ref(), |v| {
        Ok::<_, String>(PathBuf::from(v))
    })?;
    let path = args.manifest.as_path();
    let manifest = Manifest::load(path)?;
    let output = Location::parse(&manifest.output.value)
        .map_err(|r| value_error(path, "output", &manifest.output, &r))?;
    if let Location::Local(dir) = &output {
        writable(dir).map_err(|r| value_error(path, "output", &manifest.output, &r))?;
    }
    for input in &manifest.inputs.value {
        local_input_exists(&input.value).map_err(|r| value_error(path, "inputs", input, &r))?;
    }
    let delete_source = match &manifest.delete_source {
        None => false,
        Some(v) => parse_bool(&v.value.to_string())
            .map_err(|r| value_error(path, "delete-source", v, &r))?,
    };
    let base = layers.with_file(path, Default::default());
    let threads = (jobs > 1).then(|| (cores() / jobs).max(1));
    let steps = manifest
        .steps
        .value
        .into_iter()
        .enumerate()
        .map(|(i, step)| PlannedStep::new(i + 1, step, &base, threads))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunPlan {
        manifest: path.to_path_buf(),
        inputs: manifest.inputs.value.into_iter().map(|v| v.value).collect(),
        output_at: format!(
            "{}:{}: output",
            path.display(),
            manifest.output.referenced.line()
        ),
        output,
        steps,
        delete_source,
        shard,
        jobs,
        dry_run,
        report,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A local output must be a directory this user can write in, or one it
/// can create (its nearest existing parent is writable).
fn writable(dir: &Path) -> Result<(), String> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(format!("{} is not a directory", existing.display()));
    }
    // An unnamed temp file leaves nothing behind, even in a dry run.
    tempfile::tempfile_in(existing).map(|_| ()).map_err(|e| {
        format!(
            "cannot write in {}: {}",
            existing.display(),
            vidpipe::inputs::describe_io(&e)
        )
    })
}

/// A local input (not a URL or `s3://`) must exist now.
fn local_input_exists(input: &str) -> Result<(), String> {
    if input.contains("://") {
        return Ok(());
    }
    std::fs::metadata(input)
        .map(|_| ())
        .map_err(|e| format!("{input}: {}", vidpipe::inputs::describe_io(&e)))
}

/// Runs the pipeline over every input of this machine's share.
pub fn run(plan: &RunPlan, ctx: &Ctx) -> Result<Outcome, CliError> {
    let started = Instant::now();
    let needs_s3 = plan.output.is_s3() || plan.inputs.iter().any(|i| i.starts_with("s3://"));
    let session = ctx.s3_if(needs_s3)?;
    if let (Location::S3 { bucket, .. }, Some(session)) = (&plan.output, &session) {
        session
            .check_bucket(bucket)
            .map_err(|e| SettingsError::Usage(format!("{}: {e}", plan.output_at)))?;
    }
    let (items, problems) = expand(&plan.inputs, session.as_deref());
    for p in &problems {
        ctx.fail(&p.source, &p.reason);
    }
    let (items, share) = Shard::keep(plan.shard, items, |item| item.name.as_str());
    ctx.reporter.report(Event::RunStarted {
        share,
        steps: plan.steps.iter().map(|s| s.name.to_string()).collect(),
    });
    if let Some(message) = share.left_empty() {
        ctx.note(&plan.manifest.display().to_string(), message);
    } else if items.is_empty() && problems.is_empty() {
        ctx.fail(&plan.inputs.join(", "), "no video files found");
        return Ok(Outcome::SomeFailed);
    }
    let dest = ctx.destination(&plan.output)?;
    let runner = input::Runner {
        plan,
        ctx,
        dest: dest.as_ref(),
        session: session.as_deref(),
    };
    if plan.dry_run {
        let failed = each_input(&items, share, 1, ctx, |item, position| {
            match runner.plan_only(item, position) {
                Ok(words) => {
                    if !ctx.json {
                        println!("{}: {}", item.source, words.join(", "));
                    }
                    true
                }
                Err(reason) => {
                    ctx.fail(&item.source, &reason);
                    false
                }
            }
        })
        .into_iter()
        .filter(|ok| !ok)
        .count();
        return Ok(batch_outcome(problems.len() + failed));
    }
    let mut outcomes = each_input(&items, share, plan.jobs, ctx, |item, position| {
        runner.run(item, position)
    });
    outcomes.extend(problems.iter().map(|p| InputOutcome {
        input: p.source.clone(),
        output: String::new(),
        ok: false,
        steps: Vec::new(),
        source_deleted: false,
        seconds: 0.0,
        error: Some(p.reason.clone()),
    }));
    let summary = RunSummary {
        succeeded: outcomes.iter().filter(|o| o.ok).count(),
        failed: outcomes.iter().filter(|o| !o.ok).count(),
        seconds: started.elapsed().as_secs_f64(),
        inputs: outcomes,
    };
    report(plan, ctx, &summary);
    if ctx.cancel.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: finished steps are recorded beside the output; run the same command again to resume"
        );
        return Ok(Outcome::Interrupted);
    }
    Ok(batch_outcome(summary.failed))
}

/// Runs `work` on every item, `jobs` at once, in the order given; stops
/// taking new items once the run is interrupted. Results come back in the
/// items' order (those not started are left out).
fn each_input<T: Send>(
    items: &[InputItem],
    share: vidpipe::inputs::Share,
    jobs: usize,
    ctx: &Ctx,
    work: impl Fn(&InputItem, Position) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || ctx.cancel.load(Ordering::SeqCst) {
                    break;
                }
                let result = work(&items[i], Position::in_share(i, share));
                if let Ok(mut results) = results.lock() {
                    results.push((i, result));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The `summary` event, `--report`, and a line per input for a person.
fn report(plan: &RunPlan, ctx: &Ctx, summary: &RunSummary) {
    ctx.reporter.report(Event::RunSummary(summary.clone()));
    for input in &summary.inputs {
        let steps: Vec<String> = input
            .steps
            .iter()
            .map(|s| format!("{} {}", s.step, s.outcome))
            .collect();
        let status = if input.ok { "ok" } else { "FAILED" };
        let deleted = if input.source_deleted {
            ", source deleted"
        } else {
            ""
        };
        ctx.say(format!(
            "{status}  {} -> {}: {}{deleted}",
            input.input,
            input.output,
            input.error.clone().unwrap_or_else(|| steps.join(", "))
        ));
    }
    ctx.say(format!(
        "{} succeeded, {} failed in {:.0} s",
        count(summary.succeeded as u64, "input"),
        summary.failed,
        summary.seconds
    ));
    let Some(path) = &plan.report else {
        return;
    };
    let written = serde_json::to_vec_pretty(summary)
        .map_err(std::io::Error::other)
        .and_then(|json| vidpipe::fsutil::write_atomic(path, &json));
    if let Err(e) = written {
        ctx.fail(
            &path.display().to_string(),
            &format!(
                "cannot write the report: {}",
                vidpipe::inputs::describe_io(&e)
            ),
        );
    }
}
