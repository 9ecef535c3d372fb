//! Progress and milestone events, behind one reporter trait.
//!
//! Jobs describe what happens as typed [`Event`]s and hand them to a
//! [`Reporter`]; they never format output themselves. The CLI picks the
//! reporter (indicatif bars, NDJSON lines, nothing), tests can collect events
//! in memory. Every event serialises to one JSON object with an `event` tag,
//! which is exactly what `--progress json` prints.

use crate::inputs::Share;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Something a job wants the user (or a CI script) to know.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An input was opened and probed.
    Probe {
        input: String,
        /// Where the input stands in its batch (from 1).
        index: usize,
        /// Inputs in the batch.
        total: usize,
        /// `shard` (`"2/3"` or null), `kept` and `of`: what `--shard`
        /// kept of how many inputs.
        #[serde(flatten)]
        share: Share,
        width: u32,
        height: u32,
        duration: f64,
        fps: f64,
        audio: bool,
    },
    /// The renditions chosen for an input.
    Ladder {
        input: String,
        renditions: Vec<String>,
        /// Share of the total work each rendition represents (sums to 1).
        weights: Vec<f64>,
    },
    /// A previous run's checkpoint was found and will be continued.
    Resume { input: String, from_segment: u32 },
    /// The thumbnail JPEG exists.
    ThumbnailReady { input: String, path: String },
    /// A rendition advanced: `done` out of `total` units (frames or
    /// seconds of audio, scaled to 1000ths of the total).
    Progress {
        input: String,
        rendition: String,
        percent: f64,
    },
    /// A segment file was written.
    SegmentWritten {
        input: String,
        rendition: String,
        index: u32,
        duration: f64,
        bytes: u64,
    },
    /// A rendition finished and its playlists were written.
    RenditionDone {
        input: String,
        rendition: String,
        segments: u32,
        average_bandwidth: u64,
        peak_bandwidth: u64,
    },
    /// A rendition was already complete from an earlier run.
    RenditionSkipped { input: String, rendition: String },
    /// An input finished: its master playlist is in place.
    Done {
        input: String,
        master: String,
        /// CPU seconds by stage (`decode`, `720p.encode`, …), the
        /// process's `total` while the input was encoded, and `other`, what
        /// no stage accounts for; empty when nothing was encoded.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        cpu: BTreeMap<String, f64>,
    },
    /// An upload started or resumed: how many parts and bytes it has.
    Initialized {
        input: String,
        /// Where the file stands in its batch (from 1).
        index: usize,
        /// Files in the batch.
        total: usize,
        /// `shard` (`"2/3"` or null), `kept` and `of`: what `--shard`
        /// kept of how many files.
        #[serde(flatten)]
        share: Share,
        url: String,
        parts_total: u32,
        parts_done: u32,
        bytes_total: u64,
    },
    /// With no journal of its own, an upload continues an unfinished
    /// multipart upload the server holds for the key (started elsewhere):
    /// `parts_reused` of its `parts_held` parts proved to be the file's.
    UploadAdopted {
        input: String,
        url: String,
        upload_id: String,
        parts_held: u32,
        parts_reused: u32,
    },
    /// A part was acknowledged by the server.
    PartDone {
        input: String,
        part: u32,
        bytes: u64,
    },
    /// Bytes of a file acknowledged so far.
    #[serde(rename = "progress")]
    UploadProgress {
        input: String,
        bytes_done: u64,
        bytes_total: u64,
        percent: f64,
    },
    /// A file is stored and verified.
    #[serde(rename = "done")]
    Uploaded {
        input: String,
        url: String,
        bytes: u64,
    },
    /// A presigned GET URL for an uploaded object (asked for with
    /// `--presign`).
    Presigned { input: String, url: String },
    /// A caption playlist was written: it lists `segments` segments from
    /// `media_sequence` on, and ends the stream when `ended`.
    PlaylistWritten {
        input: String,
        language: String,
        path: String,
        media_sequence: u64,
        segments: u64,
        ended: bool,
    },
    /// A live caption tick finished: segments and objects it stored.
    Tick {
        tick: u64,
        segments: u64,
        objects: u64,
    },
    /// A caption run finished: its playlists are complete.
    #[serde(rename = "done")]
    CaptionsDone {
        output: String,
        languages: Vec<String>,
        segments: u64,
    },
    /// Something was repaired, left out or degraded (a transcript
    /// problem, a line without a voice, a short video); the job goes on.
    Warning { input: String, message: String },
    /// An input failed; the batch goes on.
    Error { input: String, message: String },
    /// A stage of a job advanced: `done` of `total` units (commentary:
    /// `events` intervals analysed, `speech` lines spoken, `chunks` built).
    Status {
        input: String,
        stage: String,
        done: u64,
        total: u64,
    },
    /// A commentary chunk exists at `path` (seconds `start`..`end`).
    ChunkReady {
        input: String,
        index: u32,
        start: f64,
        end: f64,
        path: String,
    },
    /// A commentary is complete: the joined file is at `path`.
    Complete {
        input: String,
        path: String,
        chunks: u32,
    },
    /// transcribe recognised a chunk (seconds `start`..`end` of the
    /// input) and found `words` words in it.
    ChunkTranscribed {
        input: String,
        index: usize,
        start: f64,
        end: f64,
        words: usize,
    },
    /// transcribe made a cue (seconds), reported in time order.
    #[serde(rename = "cue")]
    TranscriptCue {
        input: String,
        start: f64,
        end: f64,
        text: String,
    },
    /// transcribe finished an input: its transcript is at `path`.
    #[serde(rename = "done")]
    TranscriptDone {
        input: String,
        path: String,
        cues: usize,
        chunks: usize,
    },
    /// prune deleted a file (in a dry run: would delete it).
    Deleted {
        path: String,
        bytes: u64,
        reason: String,
        dry_run: bool,
    },
    /// prune keeps a file (reported in dry runs).
    Kept {
        path: String,
        bytes: u64,
        reason: String,
    },
    /// prune aborted an incomplete multipart upload (in a dry run: would).
    UploadAborted {
        url: String,
        upload_id: String,
        dry_run: bool,
    },
    /// prune finished one destination: files and bytes deleted and kept
    /// by reason.
    #[serde(rename = "summary")]
    PruneSummary {
        dest: String,
        dry_run: bool,
        deleted: BTreeMap<String, Count>,
        kept: BTreeMap<String, Count>,
        uploads_aborted: u64,
        failed: u64,
    },
    /// A pipeline run starts: the inputs it kept (`--shard`) of how many.
    RunStarted {
        /// `shard` (`"2/3"` or null), `kept` and `of`.
        #[serde(flatten)]
        share: Share,
        /// Steps per input.
        steps: Vec<String>,
    },
    /// Every step of a pipeline input ended; `ok` when none failed.
    InputDone {
        input: String,
        output: String,
        ok: bool,
        seconds: f64,
    },
    /// A pipeline step is starting on an input (`resume` when its own
    /// state says it continues earlier work).
    StepStarted {
        input: String,
        step: String,
        resume: bool,
    },
    /// A pipeline step succeeded on an input, in `seconds`.
    StepDone {
        input: String,
        step: String,
        seconds: f64,
    },
    /// A pipeline step did not run on an input, and that is not a
    /// failure: its files are not there, or it is already complete.
    StepSkipped {
        input: String,
        step: String,
        reason: String,
    },
    /// A pipeline step failed on an input (the input's later steps do not
    /// run; the other inputs go on).
    StepFailed {
        input: String,
        step: String,
        message: String,
    },
    /// `vidpipe run --dry-run`: what a step would do with an input
    /// (`run`, `resume`, `skip` or `complete`) and why.
    StepPlanned {
        input: String,
        step: String,
        action: String,
        reason: String,
    },
    /// A pipeline run ended: every input's steps and their outcomes.
    #[serde(rename = "summary")]
    RunSummary(RunSummary),
    /// An event of one step of a pipeline on one input: the step's own
    /// event with `input` (as the pipeline names it) and `step` added.
    #[serde(untagged)]
    Step(StepEvent),
}

/// What a pipeline run did, input by input.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    /// Inputs whose every step succeeded or was skipped.
    pub succeeded: usize,
    /// Inputs that failed (a step, or the input itself).
    pub failed: usize,
    /// Seconds the whole run took.
    pub seconds: f64,
    /// Each input.
    pub inputs: Vec<InputOutcome>,
}

/// One input of a pipeline run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputOutcome {
    /// The input as the pipeline names it.
    pub input: String,
    /// Where its output is.
    pub output: String,
    /// Every step succeeded or was skipped.
    pub ok: bool,
    /// Its steps, in order.
    pub steps: Vec<StepOutcome>,
    /// Its `s3://` source was deleted (`delete-source`).
    pub source_deleted: bool,
    /// Seconds its steps took.
    pub seconds: f64,
    /// Why the input failed before or between its steps, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One step of one input.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepOutcome {
    /// The step's subcommand.
    pub step: String,
    /// `done`, `complete` (done by an earlier run), `skipped`, `failed` or
    /// `not-run` (an earlier step failed, or the run was interrupted).
    pub outcome: String,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds it took.
    pub seconds: f64,
}

/// A step's own event on one input (see [`Event::Step`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepEvent {
    /// The input as the pipeline names it.
    pub input: String,
    /// The step's subcommand.
    pub step: String,
    /// The step's event.
    pub event: Box<Event>,
}

impl Serialize for StepEvent {
    /// The step's event as its own JSON object, with `input` and `step`
    /// set; an `input` of its own that says something else (a caption
    /// track) stays as `subject`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(&*self.event).map_err(S::Error::custom)?;
        if let Some(map) = value.as_object_mut() {
            let own = map.insert("input".into(), self.input.clone().into());
            if let Some(own) = own.filter(|own| own.as_str() != Some(&self.input)) {
                map.insert("subject".into(), own);
            }
            map.insert("step".into(), self.step.clone().into());
        }
        value.serialize(serializer)
    }
}

/// Files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
}

impl Count {
    /// One more file of `bytes`.
    pub fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

impl Event {
    /// Milestones are reported at once; plain progress may be throttled.
    pub fn is_milestone(&self) -> bool {
        self.progress().is_none()
    }

    /// For plain progress, what advanced and how far: the input, the
    /// rendition (empty for an upload) and the percentage. `None` for
    /// milestones.
    pub fn progress(&self) -> Option<(&str, &str, f64)> {
        match self {
            Event::Progress {
                input,
                rendition,
                percent,
            } => Some((input, rendition, *percent)),
            Event::UploadProgress { input, percent, .. } => Some((input, "", *percent)),
            Event::Step(step) => step.event.progress(),
            _ => None,
        }
    }
}

/// Decides which plain progress goes out, per (input, rendition): a
/// percentage passes when it moved at least `step` percent since the last
/// one that passed, or when it reaches 100%; the first always passes, and
/// so does every milestone ([`Event::is_milestone`]).
///
/// The one home of progress throttling: the transcoding workers use a fine
/// step (smooth bars without an event per frame), `--progress json` a
/// coarse one on top of it.
#[derive(Debug)]
pub struct Throttle {
    step: f64,
    /// Last percentage let through, by input, then rendition.
    last: Mutex<HashMap<String, HashMap<String, f64>>>,
}

impl Throttle {
    /// The step of `--progress json` (about every 2%, as SPEC.md says).
    pub const JSON_STEP: f64 = 2.0;

    /// A throttle letting progress through every `step` percent.
    pub fn new(step: f64) -> Self {
        Throttle {
            step,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `event` should be reported now.
    pub fn admits(&self, event: &Event) -> bool {
        match event.progress() {
            Some((input, rendition, percent)) => self.passes(input, rendition, percent),
            None => true,
        }
    }

    /// Whether `percent` of `input`'s `rendition` should be reported now;
    /// remembers it when so. Allocates only when it passes, so hot loops
    /// can ask before building their event.
    pub fn passes(&self, input: &str, rendition: &str, percent: f64) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let previous = last.get(input).and_then(|r| r.get(rendition)).copied();
        let due = previous.is_none_or(|previous| {
            percent - previous >= self.step || (percent >= 100.0 && previous < 100.0)
        });
        if due {
            last.entry(input.to_string())
                .or_default()
                .insert(rendition.to_string(), percent);
        }
        due
    }
}

/// Where an input stands in its batch: `index` of `total`, from 1, and
/// what share of all the inputs found that batch is (`--shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1 for the first input.
    pub index: usize,
    /// Inputs in the batch.
    pub total: usize,
    /// What `--shard` kept of how many inputs.
    pub share: Share,
}

impl Position {
    /// The one input of a run that takes one.
    pub const ONLY: Position = Position {
        index: 1,
        total: 1,
        share: Share::whole(1),
    };

    /// The `i`-th (from 0) of `total`, without sharding.
    pub fn nth(i: usize, total: usize) -> Self {
        Self::in_share(i, Share::whole(total))
    }

    /// The `i`-th (from 0) of the inputs `share` kept.
    pub fn in_share(i: usize, share: Share) -> Self {
        Position {
            index: i + 1,
            total: share.kept,
            share,
        }
    }

    /// `3/12 ` in a batch, nothing for a single input: what a progress
    /// line puts before the input's name.
    pub fn label(self) -> String {
        if self.total > 1 {
            format!("{}/{} ", self.index, self.total)
        } else {
            String::new()
        }
    }
}

/// Receives a job's events. Implementations must be cheap: events arrive
/// from encoder threads.
pub trait Reporter: Send + Sync {
    /// Records one event.
    fn report(&self, event: Event);
}

/// A reporter that drops everything (`--progress none`).
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

/// A reporter that keeps every event, for tests and for callers that want
/// to inspect a run afterwards.
#[derive(Debug, Default)]
pub struct Collected(pub std::sync::Mutex<Vec<Event>>);

impl Reporter for Collected {
    fn report(&self, event: Event) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_position_is_labelled_only_in_a_batch() {
        assert_eq!(Position::nth(2, 12).label(), "3/12 ");
        assert_eq!(Position::ONLY.label(), "");
    }

    #[test]
    fn the_share_is_flattened_into_an_inputs_first_event() {
        let share = Share {
            shard: Some(crate::inputs::Shard { index: 2, count: 3 }),
            kept: 4,
            of: 11,
        };
        let position = Position::in_share(0, share);
        assert_eq!((position.index, position.total), (1, 4));
        let event = Event::Initialized {
            input: "a.bin".into(),
            index: position.index,
            total: position.total,
            share: position.share,
            url: "s3://b/a.bin".into(),
            parts_total: 1,
            parts_done: 0,
            bytes_total: 3,
        };
        let json = serde_json::to_value(&event).expect("json");
        assert_eq!(json["event"], "initialized");
        assert_eq!(json["shard"], "2/3");
        assert_eq!(
            (json["kept"].as_u64(), json["of"].as_u64()),
            (Some(4), Some(11))
        );
        let mut event = event;
        if let Event::Initialized { share, .. } = &mut event {
            *share = Share::whole(1);
        }
        let json = serde_json::to_value(&event).expect("json");
        assert!(json["shard"].is_null(), "{json}");
        assert_eq!(
            (json["kept"].as_u64(), json["of"].as_u64()),
            (Some(1), Some(1))
        );
    }

    use super::*;

    fn progress(input: &str, rendition: &str, percent: f64) -> Event {
        Event::Progress {
            input: input.into(),
            rendition: rendition.into(),
            percent,
        }
    }

    fn upload(input: &str, percent: f64) -> Event {
        Event::UploadProgress {
            input: input.into(),
            bytes_done: (percent * 10.0) as u64,
            bytes_total: 1000,
            percent,
        }
    }

    /// Which of `percents` (one rendition, in order) the throttle admits.
    fn admitted(throttle: &Throttle, percents: &[f64]) -> Vec<f64> {
        percents
            .iter()
            .copied()
            .filter(|p| throttle.admits(&progress("a.mp4", "720p", *p)))
            .collect()
    }

    #[test]
    fn json_step_admits_progress_about_every_two_percent() {
        let throttle = Throttle::new(Throttle::JSON_STEP);
        let halves: Vec<f64> = (0..=100).map(|i| f64::from(i) * 0.5).collect();
        assert_eq!(
            admitted(&throttle, &halves),
            (0..=25).map(|i| f64::from(i) * 2.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn reaching_100_percent_passes_whatever_the_step() {
        let throttle = Throttle::new(Throttle::JSON_STEP);
        assert_eq!(
            admitted(&throttle, &[0.0, 99.5, 99.9, 100.0, 100.0]),
            vec![0.0, 99.5, 100.0]
        );
    }

    #[test]
    fn milestones_always_pass() {
        let throttle = Throttle::new(Throttle::JSON_STEP);
        let milestones = [
            Event::PartDone {
                input: "a.bin".into(),
                part: 1,
                bytes: 5,
            },
            Event::RenditionDone {
                input: "a.mp4".into(),
                rendition: "720p".into(),
                segments: 3,
                average_bandwidth: 1,
                peak_bandwidth: 2,
            },
            Event::Error {
                input: "a.mp4".into(),
                message: "broken".into(),
            },
        ];
        for event in milestones {
            assert!(event.is_milestone(), "{event:?}");
            assert!(
                throttle.admits(&event) && throttle.admits(&event),
                "{event:?}"
            );
        }
        assert!(!progress("a.mp4", "720p", 1.0).is_milestone());
        assert!(!upload("a.bin", 1.0).is_milestone());
    }

    #[test]
    fn each_input_and_rendition_is_throttled_on_its_own() {
        let throttle = Throttle::new(Throttle::JSON_STEP);
        assert!(throttle.admits(&progress("a.mp4", "720p", 10.0)));
        assert!(!throttle.admits(&progress("a.mp4", "720p", 11.0)));
        assert!(throttle.admits(&progress("a.mp4", "360p", 11.0)));
        assert!(throttle.admits(&progress("b.mp4", "720p", 11.0)));
        assert!(throttle.admits(&upload("a.mp4", 11.0)));
        assert!(!throttle.admits(&upload("a.mp4", 12.0)));
        assert!(throttle.admits(&upload("b.bin", 12.0)));
    }
}
