//! What a pipeline did with an input, kept beside its output, so that a
//! re-run skips a finished input without fetching or decoding it.
//!
//! The record (`OUTPUT/<stem>/.vidpipe/run.json`, in the bucket for an
//! `s3://` output, like every other state) names the input's identity and,
//! for every step that succeeded, a fingerprint of what it ran with (its
//! settings and the files it read). A step is complete when its fingerprint
//! is recorded for the same input and its output is still there; anything
//! else runs, and then the step's own checkpoint decides what is left.

use crate::state::{StateError, StoredState};
use crate::storage::Destination;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const VERSION: u32 = 1;

/// The record of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    version: u32,
    /// The input's identity (path, size and time, or object and ETag).
    input: String,
    /// Steps that succeeded, by `<position>:<step>`, with the fingerprint
    /// of what they ran with.
    steps: BTreeMap<String, String>,
}

/// Where the record of the input whose output is `<stem>/` lives in the
/// pipeline's output.
fn place<'a>(dest: &'a dyn Destination, stem: &str) -> StoredState<'a, RunRecord> {
    StoredState::new(
        dest,
        format!("{stem}/{}run.json", crate::state::STATE_DIR_NAME),
    )
}

impl RunRecord {
    /// The record of `stem`'s input when it was made for `identity`; a
    /// fresh one otherwise (another input, none yet, or a damaged one,
    /// which is set aside and logged).
    pub fn load(dest: &dyn Destination, stem: &str, identity: &str) -> Result<Self, StateError> {
        let loaded = place(dest, stem).load()?.value;
        Ok(loaded
            .filter(|r| r.version == VERSION && r.input == identity)
            .unwrap_or_else(|| RunRecord {
                version: VERSION,
                input: identity.to_string(),
                steps: BTreeMap::new(),
            }))
    }

    /// Whether step `key` succeeded with `fingerprint`.
    pub fn done(&self, key: &str, fingerprint: &str) -> bool {
        self.steps.get(key).is_some_and(|f| f == fingerprint)
    }

    /// Records that step `key` succeeded with `fingerprint`, and saves.
    pub fn finish(
        &mut self,
        dest: &dyn Destination,
        stem: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<(), StateError> {
        self.steps.insert(key.to_string(), fingerprint.to_string());
        place(dest, stem).save(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalDir;

    #[test]
    fn a_step_is_done_for_the_same_input_and_fingerprint_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = LocalDir::new(dir.path());
        let mut record = RunRecord::load(&dest, "talk", "talk.mp4|10|1").expect("load");
        assert!(!record.done("1:transcode-hls", "a"));
        record
            .finish(&dest, "talk", "1:transcode-hls", "a")
            .expect("save");
        assert!(dir.path().join("talk/.vidpipe/run.json").is_file());
        let again = RunRecord::load(&dest, "talk", "talk.mp4|10|1").expect("load");
        assert!(again.done("1:transcode-hls", "a"));
        assert!(!again.done("1:transcode-hls", "b"));
        let changed = RunRecord::load(&dest, "talk", "talk.mp4|11|2").expect("load");
        assert!(!changed.done("1:transcode-hls", "a"));
    }
}
