//! `vidpipe probe`: media facts as JSON on stdout.

use super::context::Ctx;
use super::error::{CliError, SettingsError};
use super::layers::Layers;
use super::{Outcome, ProbeArgs};

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
    let json = vidpipe::media::probe::probe(&run.input)
        .map_err(|e| e.to_string())
        .and_then(|info| serde_json::to_string_pretty(&info).map_err(|e| e.to_string()));
    Ok(match json {
        Ok(json) => {
            println!("{json}");
            Outcome::Success
        }
        Err(reason) => {
            ctx.fail(&run.input, &reason);
            Outcome::SomeFailed
        }
    })
}
