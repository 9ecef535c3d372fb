//! The transcode checkpoint: what a re-run may keep.
//!
//! Saved after every segment, atomically, to `checkpoint.json` in the
//! input's state directory (`DEST/<stem>/.vidpipe/`, see [`crate::state`]),
//! or for a bucket output beside it in the bucket ([`Place::Output`]), so a
//! re-run on any machine resumes. It records the input and settings it
//! belongs to (a change to either starts over) and, per rendition, the
//! segments already written and whether the rendition is complete.

use super::clock::SegmentClock;
use super::playlist::SegmentInfo;
use crate::state::{Loaded, StateError, StateFile, StoredState};
use crate::storage::Destination;
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

/// Where a checkpoint is kept.
pub enum Place<'a> {
    /// `checkpoint.json` in a local state directory: beside a local output,
    /// or under the user's state root (`--state-dir`) for a bucket output.
    Dir(PathBuf),
    /// Beside a bucket output, so any machine resumes it: under `dir`
    /// (`<stem>/.vidpipe/`) in `dest`, `checkpoint.json` for everything but
    /// the segments, and one empty object per segment, written after the
    /// segment it records, whose name carries what the playlists need
    /// (`segments/<rendition>/<index>~<uri>~<duration>~<bytes>~<iframe>.json`).
    /// A segment costs one small PUT, not a rewrite of the whole
    /// checkpoint, and a resume one listing.
    Output {
        dest: &'a dyn Destination,
        dir: String,
    },
}

impl Place<'_> {
    /// The checkpoint as it is named in messages.
    pub fn describe(&self) -> String {
        match self {
            Place::Dir(dir) => CheckpointFile::path_in(dir).display().to_string(),
            Place::Output { dest, dir } => dest.describe(&format!("{dir}{CHECKPOINT}")),
        }
    }
}

const CHECKPOINT: &str = "checkpoint.json";
const RECORDS: &str = "segments/";

/// A checkpoint and where it is saved, shared by the workers.
pub struct CheckpointFile<'a> {
    place: Place<'a>,
    state: Mutex<Checkpoint>,
    /// What the place holds (the last state saved).
    saved: Mutex<Option<Checkpoint>>,
}

impl std::fmt::Debug for CheckpointFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointFile({})", self.place.describe())
    }
}

impl<'a> CheckpointFile<'a> {
    /// Path of the checkpoint in an input's state directory
    /// ([`crate::state::OutputState::input_dir`]).
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(CHECKPOINT)
    }

    /// Reads a previous checkpoint; a damaged one is set aside and reported
    /// (see [`crate::state`]).
    pub fn load(place: &Place<'_>) -> Result<Loaded<Checkpoint>, StateError> {
        match place {
            Place::Dir(dir) => StateFile::new(Self::path_in(dir)).load(),
            Place::Output { dest, dir } => load_stored(*dest, dir),
        }
    }

    /// Wraps `state`, saving it at once. A fresh start (`resumed` false)
    /// first forgets the segment records of an earlier run.
    pub fn create(place: Place<'a>, state: Checkpoint, resumed: bool) -> Result<Self, StateError> {
        let saved = match (&place, resumed) {
            (Place::Output { dest, dir }, false) => {
                let records = format!("{dir}{RECORDS}");
                let error = |e| StateError::writing(Path::new(&dest.describe(&records)), e);
                for key in dest.list(&records).map_err(error)? {
                    dest.delete(&key).map_err(error)?;
                }
                None
            }
            (Place::Output { .. }, true) => Some(state.clone()),
            (Place::Dir(_), _) => None,
        };
        let file = CheckpointFile {
            place,
            state: Mutex::new(state),
            saved: Mutex::new(saved),
        };
        file.save(&file.snapshot())?;
        Ok(file)
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> Checkpoint {
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The segment `index` of `rendition`, when the checkpoint holds it.
    pub fn segment(&self, rendition: &str, index: u32) -> Option<SegmentInfo> {
        let state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state
            .renditions
            .get(rendition)?
            .segments
            .get(index as usize)
            .cloned()
    }

    /// Applies `change` and saves.
    pub fn update(&self, change: impl FnOnce(&mut Checkpoint)) -> Result<(), StateError> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut state);
        // Saved under the lock: two workers must not race on the place.
        self.save(&state)
    }

    fn save(&self, state: &Checkpoint) -> Result<(), StateError> {
        match &self.place {
            Place::Dir(dir) => StateFile::new(Self::path_in(dir)).save(state),
            Place::Output { dest, dir } => {
                let mut saved = match self.saved.lock() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                save_stored(*dest, dir, state, saved.as_ref())?;
                *saved = Some(state.clone());
                Ok(())
            }
        }
    }
}

/// The checkpoint without its segments: what `checkpoint.json` holds in a
/// bucket.
fn without_segments(state: &Checkpoint) -> Checkpoint {
    let mut base = state.clone();
    for r in base.renditions.values_mut() {
        r.segments.clear();
    }
    base
}

/// Stores what changed since `saved`: the new segments' records (after
/// their segments, which the workers stored first), then the rest when it
/// changed.
fn save_stored(
    dest: &dyn Destination,
    dir: &str,
    state: &Checkpoint,
    saved: Option<&Checkpoint>,
) -> Result<(), StateError> {
    let error = |key: &str, e| StateError::writing(Path::new(&dest.describe(key)), e);
    let record = |name: &str, index: usize, segment: &SegmentInfo| {
        format!("{dir}{RECORDS}{name}/{}", record_name(index, segment))
    };
    for (name, rendition) in &state.renditions {
        let before: &[SegmentInfo] = saved
            .and_then(|s| s.renditions.get(name))
            .map_or(&[], |r| &r.segments);
        for (index, segment) in rendition.segments.iter().enumerate() {
            let old = before.get(index);
            if old == Some(segment) {
                continue;
            }
            let key = record(name, index, segment);
            dest.put(&key, b"").map_err(|e| error(&key, e))?;
            if let Some(old) = old.map(|old| record(name, index, old)) {
                // A segment stored again with other bytes: one record each.
                dest.delete(&old).map_err(|e| error(&old, e))?;
            }
        }
    }
    let base = without_segments(state);
    if saved.map(without_segments).as_ref() != Some(&base) {
        StoredState::new(dest, format!("{dir}{CHECKPOINT}")).save(&base)?;
    }
    Ok(())
}

/// `00012~seg_00012.ts~6.006~123456~0-4096.json` (`-` without an I-frame).
fn record_name(index: usize, s: &SegmentInfo) -> String {
    let iframe = s
        .iframe
        .map_or("-".to_string(), |(offset, len)| format!("{offset}-{len}"));
    format!(
        "{index:05}~{}~{}~{}~{iframe}.json",
        s.uri, s.duration, s.bytes
    )
}

fn parse_record(name: &str) -> Option<(usize, SegmentInfo)> {
    let mut parts = name.strip_suffix(".json")?.split('~');
    let index = parts.next()?.parse().ok()?;
    let uri = parts.next()?.to_string();
    let duration = parts.next()?.parse().ok()?;
    let bytes = parts.next()?.parse().ok()?;
    let iframe = match parts.next()? {
        "-" => None,
        range => {
            let (offset, len) = range.split_once('-')?;
            Some((offset.parse().ok()?, len.parse().ok()?))
        }
    };
    parts.next().is_none().then_some((
        index,
        SegmentInfo {
            uri,
            duration,
            bytes,
            iframe,
        },
    ))
}

/// Reads `checkpoint.json` and the segment records under `dir`; each
/// rendition gets its records from 0 on, as far as they run unbroken.
fn load_stored(dest: &dyn Destination, dir: &str) -> Result<Loaded<Checkpoint>, StateError> {
    let base = StoredState::<Checkpoint>::new(dest, format!("{dir}{CHECKPOINT}"));
    let described = base.describe();
    let loaded = base.load()?;
    let Some(mut state) = loaded.value else {
        return Ok(loaded);
    };
    let records = format!("{dir}{RECORDS}");
    let listed = dest
        .list(&records)
        .map_err(|e| StateError::reading(&described, e))?;
    let mut found: BTreeMap<String, BTreeMap<usize, SegmentInfo>> = BTreeMap::new();
    for key in listed {
        let Some((rendition, name)) = key.strip_prefix(&records).and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        if let Some((index, info)) = parse_record(name) {
            found
                .entry(rendition.to_string())
                .or_default()
                .insert(index, info);
        }
    }
    for (name, rendition) in &mut state.renditions {
        let records = found.remove(name).unwrap_or_default();
        rendition.segments = records
            .into_iter()
            .enumerate()
            .take_while(|(i, (index, _))| i == index)
            .map(|(_, (_, info))| info)
            .collect();
    }
    for (name, records) in found {
        // Segments of a rendition whose first record the base has not seen
        // yet: the base is saved before any segment, so this only follows
        // a crash between the two; the records are still good.
        let segments: Vec<SegmentInfo> = records
            .into_iter()
            .enumerate()
            .take_while(|(i, (index, _))| i == index)
            .map(|(_, (_, info))| info)
            .collect();
        state.renditions.entry(name).or_default().segments = segments;
    }
    Ok(Loaded {
        value: Some(state),
        damaged: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoint_loads_back_and_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = Checkpoint::new("in".into(), "s".into(), SegmentClock::new(30, 1, 6000));
        let place = Place::Dir(dir.path().to_path_buf());
        let file = CheckpointFile::create(place, cp.clone(), false).expect("create");
        file.update(|c| {
            c.renditions.entry("720p".into()).or_default().done = true;
        })
        .expect("update");
        let loaded = CheckpointFile::load(&Place::Dir(dir.path().to_path_buf()))
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

    fn segment(index: u32, bytes: u64) -> SegmentInfo {
        SegmentInfo {
            uri: format!("seg_{index:05}.ts"),
            duration: 6.006,
            bytes,
            iframe: (index % 2 == 0).then_some((188, 4096)),
        }
    }

    #[test]
    fn beside_an_output_each_segment_is_one_record_and_a_resume_one_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = crate::storage::LocalDir::new(dir.path());
        let place = || Place::Output {
            dest: &dest,
            dir: "clip/.vidpipe/".into(),
        };
        let cp = Checkpoint::new("in".into(), "s".into(), SegmentClock::new(30, 1, 6000));
        let file = CheckpointFile::create(place(), cp.clone(), false).expect("create");
        for (i, bytes) in [(0, 100), (1, 200), (2, 300)] {
            file.update(|c| {
                let r = c.renditions.entry("720p".into()).or_default();
                r.segments.truncate(i as usize);
                r.segments.push(segment(i, bytes));
            })
            .expect("update");
        }
        // Segment 1 stored again with other bytes: its record is replaced.
        file.update(|c| c.renditions.get_mut("720p").expect("720p").segments[1] = segment(1, 250))
            .expect("update");
        let records = dest.list("clip/.vidpipe/segments/").expect("list");
        assert_eq!(records.len(), 3, "{records:?}");
        let loaded = CheckpointFile::load(&place())
            .expect("load")
            .value
            .expect("checkpoint");
        assert!(loaded.matches(&cp));
        assert_eq!(
            loaded.renditions["720p"].segments,
            [segment(0, 100), segment(1, 250), segment(2, 300)]
        );
        // Resumed, nothing is stored again; a fresh start forgets them.
        let resumed = CheckpointFile::create(place(), loaded, true).expect("resume");
        assert_eq!(resumed.segment("720p", 2), Some(segment(2, 300)));
        CheckpointFile::create(place(), cp, false).expect("fresh");
        assert!(dest
            .list("clip/.vidpipe/segments/")
            .expect("list")
            .is_empty());
    }

    #[test]
    fn damaged_checkpoint_is_set_aside_and_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint.json");
        std::fs::write(&path, b"{not json").expect("write");
        let loaded = CheckpointFile::load(&Place::Dir(dir.path().to_path_buf())).expect("load");
        assert!(loaded.value.is_none());
        let damaged = loaded.damaged.expect("damage reported");
        assert_eq!(damaged.kept_as, dir.path().join("checkpoint.json.damaged"));
        assert!(!path.exists());
    }
}
