//! The transcode checkpoint: what a re-run may keep.
//!
//! Written atomically to `checkpoint.json` in the input's state directory
//! (`DEST/<stem>/.vidpipe/`, see [`crate::state`]) after every segment. It records the input and settings it belongs to (a change to
//! either starts over) and, per rendition, the segments already written and
//! whether the rendition is complete.

use super::clock::SegmentClock;
use super::playlist::SegmentInfo;
use crate::state::{Loaded, StateError, StateFile};
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
    /// The subtitle group (`EXT-X-MEDIA` lines) that the master of an
    /// earlier run carried (`vidpipe captions --master`), kept here while
    /// that master is gone so the new master gets it back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<String>,
    /// Rendition directories an earlier run with other settings wrote:
    /// once the new master is published, whatever in them the new package
    /// does not list is removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<String>,
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
            subtitles: Vec::new(),
            superseded: Vec::new(),
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
    file: StateFile<Checkpoint>,
    state: Mutex<Checkpoint>,
}

impl CheckpointFile {
    /// Path of the checkpoint in an input's state directory
    /// ([`crate::state::OutputState::input_dir`]).
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join("checkpoint.json")
    }

    /// Reads a previous checkpoint; a damaged one is set aside and reported
    /// (see [`crate::state`]).
    pub fn load(path: &Path) -> Result<Loaded<Checkpoint>, StateError> {
        StateFile::new(path).load()
    }

    /// Wraps `state`, saving it at once.
    pub fn create(path: PathBuf, state: Checkpoint) -> Result<Self, StateError> {
        let file = CheckpointFile {
            file: StateFile::new(path),
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
    pub fn update(&self, change: impl FnOnce(&mut Checkpoint)) -> Result<(), StateError> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut state);
        // Saved under the lock: two workers must not race on the temp file.
        self.file.save(&state)
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
        let loaded = CheckpointFile::load(&path)
            .expect("load")
            .value
            .expect("checkpoint");
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
    fn damaged_checkpoint_is_set_aside_and_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint.json");
        std::fs::write(&path, b"{not json").expect("write");
        let loaded = CheckpointFile::load(&path).expect("load");
        assert!(loaded.value.is_none());
        let damaged = loaded.damaged.expect("damage reported");
        assert_eq!(damaged.kept_as, dir.path().join("checkpoint.json.damaged"));
        assert!(!path.exists());
    }
}
