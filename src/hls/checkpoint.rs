//! The transcode checkpoint: what a re-run may keep.
//!
//! Written atomically to `DEST/<stem>/.vidpipe/checkpoint.json` after every
//! segment. It records the input and settings it belongs to (a change to
//! either starts over) and, per rendition, the segments already written and
//! whether the rendition is complete.

use super::clock::SegmentClock;
use super::playlist::SegmentInfo;
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const VERSION: u32 = 1;

/// Progress of one rendition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RenditionState {
    /// Segments written, in order.
    pub segments: Vec<SegmentInfo>,
    /// All segments and both playlists are written.
    pub done: bool,
    /// RFC 6381 codec string, once known.
    pub codec: Option<String>,
}

/// Everything a re-run needs to resume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// Format version of this file.
    pub version: u32,
    /// Identity of the input (path, size, mtime or URL and stream facts).
    pub input: String,
    /// Hash of every setting that changes the output.
    pub settings: String,
    /// The segment clock the segments were cut with.
    pub clock: SegmentClock,
    /// Per-rendition progress, by rendition name.
    pub renditions: BTreeMap<String, RenditionState>,
}

impl Checkpoint {
    /// A fresh checkpoint.
    pub fn new(input: String, settings: String, clock: SegmentClock) -> Self {
        Checkpoint {
            version: VERSION,
            input,
            settings,
            clock,
            renditions: BTreeMap::new(),
        }
    }

    /// Whether this checkpoint belongs to the same input and settings.
    pub fn matches(&self, other: &Checkpoint) -> bool {
        self.version == other.version
            && self.input == other.input
            && self.settings == other.settings
            && self.clock == other.clock
    }
}

/// A checkpoint and the file it is saved to, shared by the workers.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    state: Mutex<Checkpoint>,
}

/// Loading or saving failed.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint {path}: {source}")]
pub struct CheckpointError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl CheckpointFile {
    /// Path of the checkpoint under an output directory.
    pub fn path_in(output_dir: &Path) -> PathBuf {
        output_dir.join(".vidpipe").join("checkpoint.json")
    }

    /// Reads a previous checkpoint; `None` if absent or unreadable (a
    /// damaged checkpoint only costs a restart).
    pub fn load(path: &Path) -> Option<Checkpoint> {
        let bytes = std::fs::read(path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(cp) => Some(cp),
            Err(e) => {
                tracing::warn!("ignoring unreadable checkpoint {}: {e}", path.display());
                None
            }
        }
    }

    /// Wraps `state`, saving it at once.
    pub fn create(path: PathBuf, state: Checkpoint) -> Result<Self, CheckpointError> {
        let file = CheckpointFile {
            path,
            state: Mutex::new(state),
        };
        file.update(|_| ())?;
        Ok(file)
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> Checkpoint {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `change` and saves atomically.
    pub fn update(&self, change: impl FnOnce(&mut Checkpoint)) -> Result<(), CheckpointError> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut state);
        let err = |source| CheckpointError {
            path: self.path.display().to_string(),
            source,
        };
        let json = serde_json::to_vec_pretty(&*state).map_err(|e| err(e.into()))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        fsutil::write_atomic(&self.path, &json).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoint_loads_back_and_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = CheckpointFile::path_in(dir.path());
        let cp = Checkpoint::new("in".into(), "s".into(), SegmentClock::new(30, 1, 6000));
        let file = CheckpointFile::create(path.clone(), cp.clone()).expect("create");
        file.update(|c| {
            c.renditions.entry("720p".into()).or_default().done = true;
        })
        .expect("update");
        let loaded = CheckpointFile::load(&path).expect("load");
        assert!(loaded.matches(&cp));
        assert!(loaded.renditions["720p"].done);
        let other = Checkpoint::new(
            "in".into(),
            "changed".into(),
            SegmentClock::new(30, 1, 6000),
        );
        assert!(!loaded.matches(&other));
    }

    #[test]
    fn damaged_checkpoint_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint.json");
        std::fs::write(&path, b"{not json").expect("write");
        assert!(CheckpointFile::load(&path).is_none());
    }
}
