//! Cron's cleanup: deletes what no player can still need, and nothing a
//! player may be reading.
//!
//! A prune of one tree (a local directory or a bucket prefix, [`tree`])
//! runs in three steps:
//!
//! 1. **Survey**: one walk keeps only what the classification needs (the
//!    playlists, the `.vidpipe` state, the newest time of each directory),
//!    then every playlist is read ([`playlist`]). This finds the outputs
//!    (a directory with a master playlist or `.vidpipe` state; otherwise a
//!    media playlist's directory) and which of them are in progress.
//! 2. **Expire** (only with `--expire`): the playlists of outputs that are
//!    wholly older than the limit are deleted first, masters before media
//!    playlists, so a reader never gets a playlist naming a missing file.
//! 3. **Sweep**: a second walk decides every file ([`Survey::decide`]) and
//!    deletes in batches as it goes, so memory stays bounded however many
//!    files there are.
//!
//! Nothing younger than the limit is ever deleted, whatever its class; an
//! unreadable playlist protects its whole output.

pub mod playlist;
mod survey;
mod sweep;
pub mod tree;
pub mod uploads;

use crate::progress::{Count, Reporter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use survey::Survey;
use sweep::Sweep;
use tree::{Entry, Tree};

pub use survey::Decision;

/// Name of the state directory vidpipe keeps beside outputs.
const STATE_DIR: &str = ".vidpipe";

/// How a prune decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneSettings {
    /// Nothing younger is deleted; a job whose state or files changed
    /// within it is in progress; a live playlist changed within it is live.
    pub older_than: Duration,
    /// Report what would go, delete nothing.
    pub dry_run: bool,
    /// Also delete whole published outputs (and plain files) older than
    /// the limit.
    pub expire: bool,
    /// The time decisions are made against.
    pub now: SystemTime,
}

/// Why a file is kept or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Listed by a live playlist.
    Live,
    /// Left a live playlist's window; its grace has not passed yet.
    Grace,
    /// Part of an output whose job is in progress.
    InProgress,
    /// Younger than `--older-than`.
    Young,
    /// Part of published output (kept without `--expire`).
    Published,
    /// Not under any output vidpipe recognises (kept without `--expire`).
    Unrecognised,
    /// In an output with a playlist that could not be read: never deleted
    /// on a guess.
    Unsure,
    /// Left a live playlist's window, and its grace has passed.
    LeftWindow,
    /// A temp file of an interrupted write.
    Temp,
    /// State of a job finished or abandoned.
    State,
    /// A segment or chunk that no playlist references.
    Unreferenced,
    /// Part of an output older than the limit (`--expire`).
    Expired,
}

impl Reason {
    /// The reason in words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Live => "listed by a live playlist",
            Reason::Grace => "left a live playlist, within its grace period",
            Reason::InProgress => "part of a job in progress",
            Reason::Young => "younger than --older-than",
            Reason::Published => "published output",
            Reason::Unrecognised => "not a vidpipe output",
            Reason::Unsure => "next to a playlist that cannot be read",
            Reason::LeftWindow => "left a live playlist, grace period over",
            Reason::Temp => "temp file of an interrupted write",
            Reason::State => "state of a finished or abandoned job",
            Reason::Unreferenced => "segment no playlist references",
            Reason::Expired => "expired output",
        }
    }

    /// The label used in JSON and summaries.
    pub fn label(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// What a prune of one tree did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Deleted (or, in a dry run, to be deleted), by reason.
    pub deleted: BTreeMap<Reason, Count>,
    /// Kept, by reason.
    pub kept: BTreeMap<Reason, Count>,
    /// Files that could not be deleted or read, and playlists that could
    /// not be read.
    pub failed: u64,
}

impl Summary {
    /// All deleted files and bytes.
    pub fn deleted_total(&self) -> Count {
        total(&self.deleted)
    }

    /// All kept files and bytes.
    pub fn kept_total(&self) -> Count {
        total(&self.kept)
    }
}

fn total(by_reason: &BTreeMap<Reason, Count>) -> Count {
    by_reason.values().fold(Count::default(), |a, t| Count {
        files: a.files + t.files,
        bytes: a.bytes + t.bytes,
    })
}

/// Prunes `tree`. `outside_state` is state of this tree's jobs kept
/// elsewhere (a bucket output's checkpoints on this machine), as entries
/// keyed like the tree's own: it marks jobs in progress, and is never
/// deleted here. Problems with single files are reported as `error`
/// events and counted; an error is returned only when the tree cannot be
/// walked at all.
pub fn prune(
    tree: &dyn Tree,
    settings: &PruneSettings,
    outside_state: &[Entry],
    reporter: &dyn Reporter,
) -> io::Result<Summary> {
    let sweep = Sweep {
        tree,
        settings,
        reporter,
        summary: Mutex::new(Summary::default()),
    };
    let survey = Survey::take(tree, settings, outside_state, &|at, why| {
        sweep.problem(at, why)
    })?;
    sweep.expire_playlists(&survey);
    sweep.sweep(&survey)?;
    Ok(sweep.summary.into_inner().unwrap_or_default())
}

/// The directory part of `key` (`""` at the top).
fn parent(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..i])
}

/// The output directory whose `.vidpipe` state `key` is part of.
fn state_root(key: &str) -> Option<&str> {
    let mut start = 0;
    for part in key.split('/') {
        if part == STATE_DIR {
            return Some(key[..start].trim_end_matches('/'));
        }
        start += part.len() + 1;
    }
    None
}

/// How long ago `time` was (zero for the future).
fn age(now: SystemTime, time: SystemTime) -> Duration {
    now.duration_since(time).unwrap_or_default()
}

#[cfg(test)]
mod tests;
