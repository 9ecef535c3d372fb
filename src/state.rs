//! State that outlives a run: where it lives, and how it is read and written.
//!
//! Every long job keeps a small JSON file that lets a re-run of the same
//! command resume instead of starting over. This module is the one place
//! that knows where those files live ([`StateDirs`]) and how they are
//! loaded and saved ([`StateFile`]).
//!
//! # Layout
//!
//! State lives beside the output, so a moved or shared directory keeps its
//! state and a job writing to a bucket resumes on any machine. Scratch, and
//! a bucket output's state when `--state-dir` keeps it off a public bucket,
//! lives under a local state root (`$XDG_STATE_HOME/vidpipe`, else
//! `~/.local/state/vidpipe`, else the temp dir; or the `--state-dir`),
//! keyed by bucket and prefix:
//!
//! | State | Local output `DEST` | Bucket output `s3://B/P/` |
//! |---|---|---|
//! | an input's state dir (transcode checkpoint) | `DEST/<stem>/.vidpipe/` | in the bucket beside the output (see [`crate::hls::checkpoint`]), or with `--state-dir` `<root>/s3/B/P/<stem>/.vidpipe/` |
//! | live captions state | `DEST/.vidpipe/captions-live.json` | in the bucket at `P/.vidpipe/captions-live.json`, or with `--state-dir` `<root>/s3/B/P/captions-live.json` |
//! | commentary work dir | `DEST/.vidpipe/commentary/` | `<root>/s3/B/P/.vidpipe/commentary/` (scratch); its `state.json` and `pcm/` also in the bucket at `P/.vidpipe/commentary/`, unless `--state-dir` |
//! | upload journals | `<root>/uploads/` | `<root>/uploads/` |
//!
//! The files inside a job's directory are named by the job
//! (`checkpoint.json` by [`crate::hls::checkpoint`], `state.json` by
//! commentary, `<hash>.json` by [`crate::upload::journal`]). The layout is
//! what released versions wrote; changing it would orphan users'
//! checkpoints.
//!
//! # A damaged state file
//!
//! One policy for every job: a state file that exists but does not parse
//! (a crash of an older version, a disk problem, a hand edit gone wrong) is
//! renamed to `<name>.damaged` beside it (replacing an older damaged copy),
//! a warning says so, and the job starts over as if there were no state.
//! A state file that cannot be read at all (permissions, I/O error) is an
//! error: starting over would redo work the file may still describe.
//! Whether a well-formed state fits the current run (same input, same
//! settings) is the job's own decision.

use crate::fsutil;
use crate::progress::{Event, Reporter};
use crate::storage::Location;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Name of the state directory beside a local output.
const STATE_DIR: &str = ".vidpipe";

/// The state directory as a key prefix beside an output: `.vidpipe/`.
pub const STATE_DIR_NAME: &str = ".vidpipe/";

/// Name of the live captions state file.
const LIVE_STATE: &str = "captions-live.json";

/// Suffix of the copy a damaged state file is kept as.
pub const DAMAGED_SUFFIX: &str = ".damaged";

/// The user's state root and the layout of every job's state under it and
/// beside outputs (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDirs {
    root: PathBuf,
}

impl StateDirs {
    /// State under `root` (tests use a temp dir).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDirs { root: root.into() }
    }

    /// The user's state root: `$XDG_STATE_HOME/vidpipe`, else
    /// `~/.local/state/vidpipe`, else `vidpipe` in the temp dir.
    pub fn from_env() -> Self {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        StateDirs::new(base.join("vidpipe"))
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where upload journals live: `<root>/uploads`.
    pub fn upload_journals(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// The state of the jobs writing to `output`.
    pub fn for_output(&self, output: &Location) -> OutputState {
        match output {
            Location::Local(dir) => OutputState {
                base: dir.clone(),
                beside_output: true,
            },
            Location::S3 { bucket, prefix } => OutputState {
                base: self.root.join("s3").join(bucket).join(prefix),
                beside_output: false,
            },
        }
    }

    /// The state of the jobs writing to `output` when it is kept on this
    /// machine: beside a local output, or for a bucket output under
    /// `state_dir` (`--state-dir`, for public buckets). `None` for a
    /// bucket output without it: that state lives in the bucket beside the
    /// output, so the job resumes on any machine.
    pub fn kept_here(&self, output: &Location, state_dir: Option<&Path>) -> Option<OutputState> {
        match (output, state_dir) {
            (Location::Local(_), _) => Some(self.for_output(output)),
            (Location::S3 { .. }, Some(root)) => Some(StateDirs::new(root).for_output(output)),
            (Location::S3 { .. }, None) => None,
        }
    }
}

/// Where the state of the jobs writing to one output lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputState {
    /// The output directory, or its mirror under the state root.
    base: PathBuf,
    /// `base` is the output itself (a local directory).
    beside_output: bool,
}

impl OutputState {
    /// The state directory of the input whose output goes under `<stem>/`:
    /// `<base>/<stem>/.vidpipe`.
    pub fn input_dir(&self, stem: &str) -> PathBuf {
        self.base.join(stem).join(STATE_DIR)
    }

    /// The live captions state file: `DEST/.vidpipe/captions-live.json`
    /// for a local output, `<root>/s3/B/P/captions-live.json` for a bucket.
    pub fn captions_live_file(&self) -> PathBuf {
        let dir = if self.beside_output {
            self.base.join(STATE_DIR)
        } else {
            self.base.clone()
        };
        dir.join(LIVE_STATE)
    }

    /// The commentary work directory (state, decoded audio, local chunks):
    /// `<base>/.vidpipe/commentary`.
    pub fn commentary_dir(&self) -> PathBuf {
        self.base.join(STATE_DIR).join("commentary")
    }

    /// For an output whose state is not beside it (a bucket): every state
    /// file kept on this machine, each with the key it would have beside
    /// the output (`<stem>/.vidpipe/checkpoint.json`,
    /// `.vidpipe/captions-live.json`, ...) and its modification time.
    /// Nothing for a local output, whose state is part of it.
    pub fn kept_elsewhere(&self) -> Vec<(String, std::time::SystemTime)> {
        if self.beside_output {
            return Vec::new();
        }
        walkdir::WalkDir::new(&self.base)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                let relative = e.path().strip_prefix(&self.base).ok()?.to_str()?;
                let relative = relative.replace('\\', "/");
                let key = match relative.strip_suffix(LIVE_STATE) {
                    // A bucket's live state sits where its output would be.
                    Some(dir) if !relative.contains(STATE_DIR) => {
                        format!("{dir}{STATE_DIR}/{LIVE_STATE}")
                    }
                    _ if relative.contains(STATE_DIR) => relative,
                    _ => return None,
                };
                Some((key, modified))
            })
            .collect()
    }
}

/// A state file could not be read, written or set aside.
#[derive(Debug)]
pub struct StateError {
    path: PathBuf,
    action: Action,
    source: io::Error,
}

/// What was being done to a state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Write,
    SetAside,
    Remove,
}

impl StateError {
    /// Reading the state at `path` (a file, or an object named like one)
    /// failed.
    pub fn reading(path: &Path, source: io::Error) -> Self {
        StateError::new(Action::Read, path, source)
    }

    /// Writing the state at `path` failed.
    pub fn writing(path: &Path, source: io::Error) -> Self {
        StateError::new(Action::Write, path, source)
    }

    fn new(action: Action, path: &Path, source: io::Error) -> Self {
        StateError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What failed, without the path: "cannot read the state file: ...".
    pub fn reason(&self) -> String {
        let what = match self.action {
            Action::Read => "cannot read the state file",
            Action::Write => "cannot write the state file",
            Action::SetAside => "cannot set the damaged state file aside",
            Action::Remove => "cannot remove the state file",
        };
        format!("{what}: {}", self.source)
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A state file that did not parse, and where it was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The state file.
    pub path: PathBuf,
    /// Where its bytes are now.
    pub kept_as: PathBuf,
    /// Why it did not parse.
    pub problem: String,
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "damaged state file {} ({}): kept it as {} and started over",
            self.path.display(),
            self.problem,
            self.kept_as.display()
        )
    }
}

/// What loading a state file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded<T> {
    /// The state; `None` when there was none or it was damaged.
    pub value: Option<T>,
    /// Set when the file was damaged and set aside.
    pub damaged: Option<Damaged>,
}

impl<T> Loaded<T> {
    /// The state, after reporting a damaged file as a warning about `input`.
    pub fn reported(self, reporter: &dyn Reporter, input: &str) -> Option<T> {
        if let Some(damaged) = &self.damaged {
            reporter.report(Event::Warning {
                input: input.to_string(),
                message: damaged.to_string(),
            });
        }
        self.value
    }
}

/// A JSON state file, saved atomically and loaded under the damaged-file
/// policy of the [module docs](self).
#[derive(Debug)]
pub struct StateFile<T> {
    path: PathBuf,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> StateFile<T> {
    /// The state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile {
            path: path.into(),
            kind: PhantomData,
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a damaged copy is kept: `<name>.damaged` beside it.
    pub fn damaged_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(DAMAGED_SUFFIX);
        self.path.with_file_name(name)
    }

    /// Reads the state: nothing if the file is absent; nothing and a
    /// [`Damaged`] report (also logged) if it does not parse, the file
    /// renamed aside; an error if it cannot be read.
    pub fn load(&self) -> Result<Loaded<T>, StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    value: None,
                    damaged: None,
                })
            }
            Err(e) => return Err(StateError::new(Action::Read, &self.path, e)),
        };
        let kept_as = self.damaged_path();
        parsed_or_set_aside(&bytes, self.path.clone(), kept_as.clone(), || {
            std::fs::rename(&self.path, &kept_as)
        })
    }

    /// Saves `value` atomically (temp file and rename), creating the
    /// directory if needed.
    pub fn save(&self, value: &T) -> Result<(), StateError> {
        let error = |source| StateError::new(Action::Write, &self.path, source);
        let json = serde_json::to_vec_pretty(value).map_err(|e| error(io::Error::other(e)))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        fsutil::write_atomic(&self.path, &json).map_err(error)
    }

    /// Removes the file (the job it recorded is finished or abandoned); a
    /// missing file is fine.
    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StateError::new(Action::Remove, &self.path, e))
            }
            _ => Ok(()),
        }
    }
}

/// The state in `bytes`, or, when they do not parse, nothing and a
/// [`Damaged`] report (also logged) once `set_aside` kept them at `kept_as`.
fn parsed_or_set_aside<T: DeserializeOwned>(
    bytes: &[u8],
    path: PathBuf,
    kept_as: PathBuf,
    set_aside: impl FnOnce() -> io::Result<()>,
) -> Result<Loaded<T>, StateError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(Loaded {
            value: Some(value),
            damaged: None,
        }),
        Err(e) => {
            set_aside().map_err(|source| StateError::new(Action::SetAside, &path, source))?;
            let damaged = Damaged {
                path,
                kept_as,
                problem: e.to_string(),
            };
            tracing::warn!("{damaged}");
            Ok(Loaded {
                value: None,
                damaged: Some(damaged),
            })
        }
    }
}

/// A state file kept as an object beside an output (a bucket output's
/// `<stem>/.vidpipe/…`), so the job resumes on any machine that writes to
/// the same output. The same policy as [`StateFile`]: an object that does
/// not parse is copied to `<key>.damaged` and reported, a read that fails
/// otherwise is an error.
pub struct StoredState<'a, T> {
    dest: &'a dyn crate::storage::Destination,
    key: String,
    _kind: PhantomData<T>,
}

impl<'a, T: Serialize + DeserializeOwned> StoredState<'a, T> {
    /// The state at `key` in `dest`.
    pub fn new(dest: &'a dyn crate::storage::Destination, key: impl Into<String>) -> Self {
        StoredState {
            dest,
            key: key.into(),
            _kind: PhantomData,
        }
    }

    /// The object as named in messages.
    pub fn describe(&self) -> PathBuf {
        PathBuf::from(self.dest.describe(&self.key))
    }

    /// Reads the state (see [`StateFile::load`]).
    pub fn load(&self) -> Result<Loaded<T>, StateError> {
        let nothing = Loaded {
            value: None,
            damaged: None,
        };
        let bytes = match self.dest.get(&self.key) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(nothing),
            Err(_) if !self.dest.exists(&self.key) => return Ok(nothing),
            Err(e) => return Err(StateError::reading(&self.describe(), e)),
        };
        let aside = format!("{}{DAMAGED_SUFFIX}", self.key);
        let kept_as = PathBuf::from(self.dest.describe(&aside));
        parsed_or_set_aside(&bytes, self.describe(), kept_as, || {
            self.dest
                .put(&aside, &bytes)
                .and_then(|()| self.dest.delete(&self.key))
        })
    }

    /// Stores `value` (one PUT: readers see the old state or the new).
    pub fn save(&self, value: &T) -> Result<(), StateError> {
        let error = |source| StateError::writing(&self.describe(), source);
        let json = serde_json::to_vec_pretty(value).map_err(|e| error(io::Error::other(e)))?;
        self.dest.put(&self.key, &json).map_err(error)
    }
}

/// A job's state file, on this machine or beside the output.
pub enum StatePlace<'a, T> {
    /// A local file.
    File(StateFile<T>),
    /// An object beside the output.
    Stored(StoredState<'a, T>),
}

impl<T: Serialize + DeserializeOwned> StatePlace<'_, T> {
    /// Reads the state (see [`StateFile::load`]).
    pub fn load(&self) -> Result<Loaded<T>, StateError> {
        match self {
            StatePlace::File(f) => f.load(),
            StatePlace::Stored(s) => s.load(),
        }
    }

    /// Saves the state.
    pub fn save(&self, value: &T) -> Result<(), StateError> {
        match self {
            StatePlace::File(f) => f.save(value),
            StatePlace::Stored(s) => s.save(value),
        }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            StatePlace::File(f) => f.path().display().to_string(),
            StatePlace::Stored(s) => s.describe().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::Mutex;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Progress {
        done: u32,
        name: String,
    }

    fn sample() -> Progress {
        Progress {
            done: 3,
            name: "clip".into(),
        }
    }

    /// Records every event.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);

    impl Reporter for Recorder {
        fn report(&self, event: Event) {
            self.0.lock().expect("lock").push(event);
        }
    }

    #[test]
    fn saved_state_loads_back_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::new(dir.path().join("new/dir/state.json"));
        file.save(&sample()).expect("save");
        let loaded = file.load().expect("load");
        assert_eq!(
            loaded,
            Loaded {
                value: Some(sample()),
                damaged: None
            }
        );
        assert!(!fsutil::partial_path(file.path()).exists());
    }

    #[test]
    fn missing_file_is_no_state_and_no_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::<Progress>::new(dir.path().join("state.json"));
        let loaded = file.load().expect("load");
        assert_eq!(loaded.value, None);
        assert_eq!(loaded.damaged, None);
        assert!(!file.damaged_path().exists());
    }

    #[test]
    fn damaged_file_is_kept_aside_reported_and_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::<Progress>::new(dir.path().join("state.json"));
        let garbage = b"{\"done\": 3, \"na";
        std::fs::write(file.path(), garbage).expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(loaded.value, None, "a damaged state starts over");
        let damaged = loaded.damaged.clone().expect("damage reported");
        let kept_as = dir.path().join("state.json.damaged");
        assert_eq!(damaged.kept_as, kept_as);
        assert_eq!(damaged.path, file.path());
        assert_eq!(std::fs::read(&kept_as).expect("copy"), garbage);
        assert!(!file.path().exists(), "the damaged file was moved aside");

        let recorder = Recorder::default();
        assert_eq!(loaded.reported(&recorder, "clip.mp4"), None);
        let events = recorder.0.lock().expect("lock");
        match events.as_slice() {
            [Event::Warning { input, message }] => {
                assert_eq!(input, "clip.mp4");
                assert!(message.contains("state.json.damaged"), "{message}");
                assert!(message.contains("started over"), "{message}");
            }
            other => panic!("expected one warning, got {other:?}"),
        }

        // The next run finds no state and saves afresh.
        assert_eq!(file.load().expect("load").value, None);
        file.save(&sample()).expect("save");
        assert_eq!(file.load().expect("load").value, Some(sample()));
    }

    #[test]
    fn wrong_shape_counts_as_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::<Progress>::new(dir.path().join("state.json"));
        std::fs::write(file.path(), b"{\"done\": \"three\"}").expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(loaded.value, None);
        assert!(loaded.damaged.is_some());
    }

    #[test]
    fn unreadable_file_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be: reading it fails whoever
        // runs the test (permissions do not stop root).
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).expect("mkdir");
        let file = StateFile::<Progress>::new(&path);
        let err = file.load().expect_err("unreadable is an error");
        assert_eq!(err.path(), path);
        assert!(
            err.reason().starts_with("cannot read the state file"),
            "{err}"
        );
        assert!(path.is_dir(), "nothing was moved");
        assert!(!file.damaged_path().exists());
    }

    #[test]
    fn state_of_a_local_output_lives_beside_it() {
        let dirs = StateDirs::new("/state/vidpipe");
        let out = dirs.for_output(&Location::Local(PathBuf::from("/videos/out")));
        assert_eq!(
            out.input_dir("talk"),
            Path::new("/videos/out/talk/.vidpipe")
        );
        assert_eq!(
            out.captions_live_file(),
            Path::new("/videos/out/.vidpipe/captions-live.json")
        );
        assert_eq!(
            out.commentary_dir(),
            Path::new("/videos/out/.vidpipe/commentary")
        );
        assert_eq!(dirs.upload_journals(), Path::new("/state/vidpipe/uploads"));
    }

    #[test]
    fn state_of_a_bucket_output_lives_under_the_root() {
        let dirs = StateDirs::new("/state/vidpipe");
        let out = dirs.for_output(&Location::S3 {
            bucket: "media".into(),
            prefix: "vod/2024/".into(),
        });
        assert_eq!(
            out.input_dir("talk"),
            Path::new("/state/vidpipe/s3/media/vod/2024/talk/.vidpipe")
        );
        assert_eq!(
            out.captions_live_file(),
            Path::new("/state/vidpipe/s3/media/vod/2024/captions-live.json")
        );
        assert_eq!(
            out.commentary_dir(),
            Path::new("/state/vidpipe/s3/media/vod/2024/.vidpipe/commentary")
        );
        let top = dirs.for_output(&Location::S3 {
            bucket: "media".into(),
            prefix: String::new(),
        });
        assert_eq!(
            top.captions_live_file(),
            Path::new("/state/vidpipe/s3/media/captions-live.json")
        );
    }
}
