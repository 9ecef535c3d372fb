//! What every subcommand's `run` gets besides its own settings.
//!
//! [`Ctx`] holds the reporter (always one that shows warnings and errors on
//! a terminal), the cancel flag set by Ctrl-C/SIGTERM, how chatty the
//! console may be, the S3 connection (opened on first use, once), and the
//! user's state directory. Subcommands open outputs and report failures
//! through it, so none of them wires these things itself.

use super::error::CliError;
use super::Outcome;
use std::sync::{Arc, OnceLock};
use vidpipe::inputs::Readable;
use vidpipe::media::remote::RemoteError;
use vidpipe::progress::{Event, Reporter};
use vidpipe::state::StateDirs;
use vidpipe::storage::{Destination, LocalDir, Location, S3Dest, S3Options, S3Session};
use vidpipe::CancelFlag;

/// The shared context of one command.
pub struct Ctx {
    /// Where events go (bars, JSON lines or nothing), with warnings and
    /// errors always shown on stderr.
    pub reporter: Arc<dyn Reporter>,
    /// Set when the user asks to stop.
    pub cancel: CancelFlag,
    /// Human summary lines on stderr are wanted (not `-q`, not JSON).
    pub chatty: bool,
    /// `--progress json`: machine-readable output on stdout.
    pub json: bool,
    /// Where state that must outlive a run is kept (checkpoints, journals,
    /// live state): the one layout of [`StateDirs`].
    pub state: StateDirs,
    s3_options: S3Options,
    /// Shared with the contexts made by [`scoped`](Self::scoped).
    s3: Arc<OnceLock<Result<Arc<S3Session>, String>>>,
}

impl Ctx {
    /// A context around `reporter`.
    pub fn new(
        reporter: Box<dyn Reporter>,
        cancel: CancelFlag,
        chatty: bool,
        json: bool,
        s3_options: S3Options,
    ) -> Self {
        Ctx {
            reporter: Arc::from(reporter),
            cancel,
            chatty,
            json,
            state: StateDirs::from_env(),
            s3_options,
            s3: Arc::new(OnceLock::new()),
        }
    }

    /// A context for one part of this command's work (a step of a
    /// pipeline): its events go to `reporter`, it prints no summary lines
    /// of its own, and it shares the cancel flag, state and S3 connection.
    pub fn scoped(&self, reporter: Arc<dyn Reporter>) -> Ctx {
        Ctx {
            reporter,
            cancel: self.cancel.clone(),
            chatty: false,
            json: self.json,
            state: self.state.clone(),
            s3_options: self.s3_options.clone(),
            s3: self.s3.clone(),
        }
    }

    /// The reporter, as the engine takes it.
    pub fn reporter(&self) -> &dyn Reporter {
        self.reporter.as_ref()
    }

    /// The S3 connection, set up on first use. Failing to set it up is a
    /// runtime failure (exit 1) in every subcommand.
    pub fn s3(&self) -> Result<Arc<S3Session>, CliError> {
        self.s3
            .get_or_init(|| S3Session::connect(&self.s3_options).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| CliError::runtime("S3", format!("cannot set up the S3 client: {e}")))
    }

    /// The S3 connection when `needed`, else `None` (nothing is set up).
    pub fn s3_if(&self, needed: bool) -> Result<Option<Arc<S3Session>>, CliError> {
        needed.then(|| self.s3()).transpose()
    }

    /// Where `location` is written: a local directory, or a bucket.
    pub fn destination(&self, location: &Location) -> Result<Box<dyn Destination>, CliError> {
        Ok(match location {
            Location::Local(dir) => Box::new(LocalDir::new(dir)),
            Location::S3 { bucket, prefix } => Box::new(S3Dest::new(self.s3()?, bucket, prefix)),
        })
    }

    /// Reports a failed input: an `error` event (the reporter shows it on
    /// stderr too).
    pub fn fail(&self, input: &str, message: &str) {
        self.reporter.report(Event::Error {
            input: input.to_string(),
            message: message.to_string(),
        });
    }

    /// Makes an input readable for a job that decodes it (`open` is what
    /// libav opens, `source` the input as the user named it; see
    /// [`vidpipe::inputs::readable`]), its warnings reported as the
    /// input's. A failure is reported, and returned as the outcome it
    /// means: `Interrupted` on Ctrl-C, else `SomeFailed`.
    pub fn readable(&self, open: &str, source: &str) -> Result<Readable, Outcome> {
        match vidpipe::inputs::readable(open, source, &|m| self.note(source, m), &self.cancel) {
            Ok(readable) => Ok(readable),
            Err(RemoteError::Interrupted) => Err(Outcome::Interrupted),
            Err(e) => {
                self.fail(source, &e.to_string());
                Err(Outcome::SomeFailed)
            }
        }
    }

    /// Something the user should know that is not a failure: a `warning`
    /// event (shown on stderr too).
    pub fn note(&self, input: &str, message: impl Into<String>) {
        self.reporter.report(Event::Warning {
            input: input.to_string(),
            message: message.into(),
        });
    }

    /// A summary line for a person at a terminal (not with `-q` or
    /// `--progress json`).
    pub fn say(&self, line: impl std::fmt::Display) {
        if self.chatty {
            eprintln!("{line}");
        }
    }
}

/// The outcome of a batch in which `failed` inputs failed.
pub fn batch_outcome(failed: usize) -> Outcome {
    if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}

/// `1 segment`, `3 segments`: a count with its noun for summary lines.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_take_the_plural_from_two_on() {
        assert_eq!(super::count(1u32, "segment"), "1 segment");
        assert_eq!(super::count(0u32, "chunk"), "0 chunks");
        assert_eq!(super::count(12u64, "tick"), "12 ticks");
    }
}
