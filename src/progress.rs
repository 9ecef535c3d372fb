//! Progress and milestone events, behind one reporter trait.
//!
//! Jobs describe what happens as typed [`Event`]s and hand them to a
//! [`Reporter`]; they never format output themselves. The CLI picks the
//! reporter (indicatif bars, NDJSON lines, nothing), tests can collect events
//! in memory. Every event serialises to one JSON object with an `event` tag,
//! which is exactly what `--progress json` prints.

use serde::Serialize;

/// Something a job wants the user (or a CI script) to know.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An input was opened and probed.
    Probe {
        input: String,
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
    Done { input: String, master: String },
    /// An upload started or resumed: how many parts and bytes it has.
    Initialized {
        input: String,
        url: String,
        parts_total: u32,
        parts_done: u32,
        bytes_total: u64,
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
}

impl Event {
    /// Milestones are reported at once; plain progress may be throttled.
    pub fn is_milestone(&self) -> bool {
        !matches!(self, Event::Progress { .. } | Event::UploadProgress { .. })
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
