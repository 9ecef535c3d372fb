//! `vidpipe probe`: media facts as JSON on stdout.

use super::context::Ctx;
use super::error::{CliError, SettingsError};
use super::layers::Layers;
use super::{Outcome, ProbeArgs};
use vidpipe::inputs::expand;

/// Everything `probe` needs to run.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    /// A media file or URL.
    pub input: String,
}

/// Validated settings for `probe` (it has no options of its own).
pub fn settings(_layers: &Layers, args: &ProbeArgs) -> Result<ProbeRun, SettingsError> {
    Ok(ProbeRun {
        input: args.input.clone(),
    })
}

/// Prints the facts, or reports why the input cannot be read.
pub fn run(run: &ProbeRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let failed = |reason: &str| {
        ctx.fail(&run.input, reason);
        Ok(Outcome::SomeFailed)
    };
    let url = match open_url(run, ctx)? {
        Ok(url) => url,
        Err(reason) => return failed(&reason),
    };
    let input = match ctx.readable(&url, &run.input) {
        Ok(input) => input,
        Err(outcome) => return Ok(outcome),
    };
    let json = vidpipe::media::probe::probe(input.open())
        // An s3:// input is opened through a presigned URL: a bearer
        // token that is never shown.
        .map_err(|e| e.to_string().replace(&url, &run.input))
        .and_then(|mut info| {
            info.input.clone_from(&run.input);
            serde_json::to_string_pretty(&info).map_err(|e| e.to_string())
        });
    match json {
        Ok(json) => {
            println!("{json}");
            Ok(Outcome::Success)
        }
        Err(reason) => failed(&reason),
    }
}

/// What libav opens: the input itself, or for `s3://bucket/key` a
/// presigned URL of the object (like every other subcommand's inputs).
fn open_url(run: &ProbeRun, ctx: &Ctx) -> Result<Result<String, String>, CliError> {
    if !run.input.starts_with("s3://") {
        return Ok(Ok(run.input.clone()));
    }
    let session = ctx.s3()?;
    let (items, problems) = expand(std::slice::from_ref(&run.input), Some(&session));
    Ok(
        match (items.into_iter().next(), problems.into_iter().next()) {
            (Some(item), _) => Ok(item.open),
            (None, Some(problem)) => Err(problem.reason),
            (None, None) => Err("no video object there".into()),
        },
    )
}
