//! The command line: one contract for every subcommand.
//!
//! Flow: clap parses [`args::Cli`] (flags and `VIDPIPE_*` variables) →
//! [`layers::Layers`] loads the YAML config file and the global settings →
//! the subcommand's `settings(&Layers, &Args)` validates everything into
//! its run settings (a [`SettingsError`] exits 2) → `run(&Run, &Ctx)` does
//! the work with the shared [`Ctx`] (reporter, cancel flag, outputs, state)
//! and returns an [`Outcome`] (a [`CliError`] exits by its kind).
//!
//! Each `cli/<command>.rs` has exactly those two functions; adding a
//! subcommand means writing them and one line in [`execute`].

pub mod args;
pub mod captions;
pub mod commentary;
pub mod context;
pub mod error;
pub mod layers;
pub mod probe;
pub mod prune;
pub mod report;
pub mod run;
pub mod transcode;
pub mod transcribe;
pub mod upload;

#[cfg(test)]
mod generated;

pub use args::*;
pub use context::Ctx;
pub use error::{CliError, SettingsError};

use layers::Layers;

/// How a command ended, mapped to the documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything succeeded: 0.
    Success,
    /// Some inputs failed, the others were processed: 1.
    SomeFailed,
    /// Stopped by Ctrl-C or SIGTERM: 130.
    Interrupted,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::SomeFailed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

/// Runs the subcommand of `cli` with `ctx`: its settings, then its run.
pub fn execute(cli: &Cli, layers: &Layers, ctx: &Ctx) -> Result<Outcome, CliError> {
    match &cli.command {
        Command::TranscodeHls(args) => step(layers, args, ctx, transcode::settings, transcode::run),
        Command::UploadChunked(args) => step(layers, args, ctx, upload::settings, upload::run),
        Command::Captions(args) => step(layers, args, ctx, captions::settings, captions::run),
        Command::Commentary(args) => step(layers, args, ctx, commentary::settings, commentary::run),
        Command::Probe(args) => step(layers, args, ctx, probe::settings, probe::run),
        Command::Prune(args) => step(layers, args, ctx, prune::settings, prune::run),
        Command::Run(args) => step(layers, args, ctx, run::settings, run::run),
        Command::Transcribe(args) => step(layers, args, ctx, transcribe::settings, transcribe::run),
    }
}

/// The contract: validated settings first (nothing runs on a usage error),
/// then the run.
fn step<A, R>(
    layers: &Layers,
    args: &A,
    ctx: &Ctx,
    settings: fn(&Layers, &A) -> Result<R, SettingsError>,
    run: fn(&R, &Ctx) -> Result<Outcome, CliError>,
) -> Result<Outcome, CliError> {
    let validated = settings(layers, args)?;
    run(&validated, ctx)
}
