//! `commentary`: a voice over the video, in fixed-interval chunks built in
//! parallel, then joined.
//!
//! Data flow for one video: probe → a constant-rate [`Timeline`] cut into
//! frame-exact [`Interval`]s → lines (a [`script`], or [`events`] detected
//! in the video and worded by [`writer`], interval by interval) go onto the
//! [`voices`] board, where a pool of speech workers ([`tts`], at most
//! `--tts-concurrency` at once) turns them into PCM → chunks are built
//! ([`chunk`]: decode the interval, encode H.264, mix the voices over the
//! ducked original through a filter graph ([`mix`]), mux a progressive MP4)
//! the first interval first and alone with every thread, then the rest in
//! parallel; each is published and announced (`chunk_ready`) the moment it
//! exists, with an HLS EVENT [`playlist`] when asked → the chunks are joined
//! into `commentary.mp4` ([`concat`]).
//!
//! The threads of a run and its state file live in [`pipeline`]. A state
//! file (settings fingerprint and finished chunks) beside the output makes
//! a re-run keep finished chunks and build only the missing ones; the mixed
//! PCM of each chunk is kept there until the final file exists, because the
//! final audio is encoded once from it.

pub mod chunk;
pub mod concat;
pub mod events;
pub mod mix;
mod pipeline;
pub mod playlist;
pub mod script;
pub mod tts;
pub mod voices;
pub mod writer;

use crate::media::audio::SAMPLE_RATE;
use crate::media::probe::{describe, require_video};
use crate::media::video::output_frame_rate;
use crate::media::{self, ff, MediaError};
use crate::progress::{Event, Reporter};
use crate::units::Bitrate;
use crate::CancelFlag;
use events::{DetectedEvent, EventSource};
use mix::Duck;
use script::{Line, ScriptError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use writer::Wording;

pub use pipeline::{run, state_location};

/// Validated settings of `commentary`.
#[derive(Debug, Clone, Serialize)]
pub struct CommentarySettings {
    /// Chunk length in seconds (rounded to whole frames).
    pub interval: f64,
    /// Seconds between a line's time and its voice.
    pub voice_delay: f64,
    /// How the original audio makes room for the voice.
    pub duck: Duck,
    /// x264 preset, the same for every chunk.
    pub preset: String,
    /// H.264 bitrate.
    pub video_bitrate: Bitrate,
    /// AAC bitrate.
    pub audio_bitrate: Bitrate,
    /// Highest output frame rate.
    pub max_fps: u32,
    /// Also keep an HLS EVENT playlist of MPEG-TS copies.
    pub hls: bool,
    /// At most this many TTS programs at once.
    #[serde(skip)]
    pub tts_concurrency: usize,
    /// Time limit per TTS or writer run.
    #[serde(skip)]
    pub tts_timeout: Duration,
    /// CPU threads in total (0: all cores).
    #[serde(skip)]
    pub threads: usize,
}

impl Default for CommentarySettings {
    fn default() -> Self {
        CommentarySettings {
            interval: 30.0,
            voice_delay: 1.0,
            duck: Duck::Fixed(0.2),
            preset: "veryfast".into(),
            video_bitrate: Bitrate(2_000_000),
            audio_bitrate: Bitrate(128_000),
            max_fps: 60,
            hls: false,
            tts_concurrency: 5,
            tts_timeout: Duration::from_secs(30),
            threads: 0,
        }
    }
}

/// Where the lines come from.
#[derive(Debug, Clone, Serialize)]
pub enum LineSource {
    /// A validated script.
    Script(Vec<Line>),
    /// Detected events, worded by templates or a writer command.
    Auto {
        /// How lines are worded.
        wording: Wording,
        /// Lines per interval at most.
        per_interval: usize,
    },
}

/// One video to commentate and where its output goes.
#[derive(Debug, Clone)]
pub struct Job {
    /// The video as shown to the user.
    pub input: String,
    /// What libav opens.
    pub open: String,
    /// Identity of the input (size, mtime) for the resume state.
    pub identity: String,
    /// Where the video stands in its batch.
    pub position: crate::progress::Position,
    /// Local directory for the state file, PCM and temp files
    /// ([`crate::state::OutputState::commentary_dir`]).
    pub work_dir: PathBuf,
    /// The output is a bucket and the state lives in it beside the output
    /// (`.vidpipe/commentary/`, the same layout as `work_dir`): the state
    /// file, and each finished chunk's mixed audio until the final file
    /// exists, so the run resumes on any machine. Without it the state is
    /// only in `work_dir`.
    pub state_in_output: bool,
    /// The output directory when it is local (chunks are read back from
    /// it); `None` for a bucket (copies are kept in `work_dir`).
    pub local_output: Option<PathBuf>,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Location of `commentary.mp4`.
    pub path: String,
    /// Chunks in total.
    pub chunks: u32,
    /// Chunks built by this run (the others were kept).
    pub built: u32,
}

/// Why a video could not be commentated.
#[derive(Debug, thiserror::Error)]
pub enum CommentaryError {
    /// The video is unusable.
    #[error("{0}")]
    Input(String),
    /// libav failed while building output.
    #[error("{0}")]
    Media(String, #[source] MediaError),
    /// A chunk file (its MP4 or its mixed audio) cannot be read back.
    #[error("{0}")]
    ChunkFile(String),
    /// The run could not set itself up or lost track of its own parts
    /// (threads, an invariant); nothing the input can fix.
    #[error("{0}")]
    Internal(String),
    /// The script is wrong.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// Storing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The user stopped the run; finished chunks are kept.
    #[error("interrupted")]
    Interrupted,
    /// The state file cannot be read or written.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl From<MediaError> for CommentaryError {
    fn from(e: MediaError) -> Self {
        CommentaryError::Input(e.to_string())
    }
}

/// The constant-rate timeline chunks are cut on: frame `n` is shown at
/// `n / fps` seconds after the video's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Frame rate numerator.
    pub fps_num: i32,
    /// Frame rate denominator.
    pub fps_den: i32,
    /// Stream time (seconds) of the first frame.
    pub start_time: f64,
    /// `start_time` in frames (the decoder's frame numbers start there).
    pub origin_frames: i64,
}

impl Timeline {
    /// A timeline at `fps` starting at `start_time`.
    pub fn new(fps: ff::Rational, start_time: f64) -> Self {
        let (num, den) = (fps.numerator().max(1), fps.denominator().max(1));
        Timeline {
            fps_num: num,
            fps_den: den,
            start_time,
            origin_frames: (start_time * f64::from(num) / f64::from(den)).round() as i64,
        }
    }

    /// The frame rate.
    pub fn fps(&self) -> ff::Rational {
        ff::Rational(self.fps_num, self.fps_den)
    }

    /// Seconds at frame `f`.
    pub fn secs_of(&self, f: u64) -> f64 {
        f as f64 * f64::from(self.fps_den) / f64::from(self.fps_num)
    }

    /// Audio sample (48 kHz) at frame `f`: the same function cuts every
    /// chunk, so neighbouring chunks share their boundary sample exactly.
    pub fn sample_of(&self, f: u64) -> i64 {
        (u128::from(f) * SAMPLE_RATE as u128 * self.fps_den as u128 / self.fps_num as u128) as i64
    }

    /// 90 kHz ticks at frame `f`.
    pub fn ticks_of(&self, f: u64) -> i64 {
        (u128::from(f) * 90_000 * self.fps_den as u128 / self.fps_num as u128) as i64
    }

    /// Whole frames in `secs` (rounded).
    pub fn frames_in(&self, secs: f64) -> u64 {
        (secs * f64::from(self.fps_num) / f64::from(self.fps_den))
            .round()
            .max(0.0) as u64
    }
}

/// One chunk's span of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Chunk number, from 0.
    pub index: u32,
    /// First frame.
    pub first: u64,
    /// One past the last frame; `None` for the last chunk, which runs to
    /// the end of the video.
    pub end: Option<u64>,
}

/// The shortest last chunk, in seconds: a shorter tail joins the chunk
/// before it.
pub const MIN_TAIL_SECS: f64 = 1.0;

/// Cuts `total` frames (an estimate) into intervals of `per_chunk` frames;
/// the last one runs to the end of the video whatever its real length. A
/// tail shorter than `min_tail` frames (at most one chunk) is no chunk of
/// its own: it joins the one before it (which is then up to
/// `per_chunk + min_tail - 1` long).
pub fn plan(total: u64, per_chunk: u64, min_tail: u64) -> Vec<Interval> {
    let per_chunk = per_chunk.max(1);
    let min_tail = min_tail.min(per_chunk);
    let mut count = total.div_ceil(per_chunk).max(1);
    if count > 1 && total - (count - 1) * per_chunk < min_tail {
        count -= 1;
    }
    (0..count)
        .map(|i| Interval {
            index: i as u32,
            first: i * per_chunk,
            end: (i + 1 < count).then_some((i + 1) * per_chunk),
        })
        .collect()
}

/// Locks `m`, going on with the data of a thread that panicked while
/// holding it (its panic is reported where it happened).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Key of chunk `i` under the destination.
pub fn chunk_key(i: u32) -> String {
    format!("chunks/chunk_{i:04}.mp4")
}

/// Key of chunk `i`'s MPEG-TS copy.
fn ts_key(i: u32) -> String {
    format!("hls/chunk_{i:04}.ts")
}

/// Key of the HLS playlist.
pub const PLAYLIST_KEY: &str = "hls/commentary.m3u8";

/// Key of the final file.
pub const FINAL_KEY: &str = "commentary.mp4";

/// Detected events of a whole video (`--events-only`).
pub fn detect_all(
    job: &Job,
    settings: &CommentarySettings,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
) -> Result<Vec<DetectedEvent>, CommentaryError> {
    let probe = Probe::open(job, settings)?;
    let per_chunk = probe.timeline.frames_in(settings.interval).max(1);
    let min_tail = probe.timeline.frames_in(MIN_TAIL_SECS);
    let intervals = plan(probe.total_frames, per_chunk, min_tail);
    let mut all = Vec::new();
    let total = intervals.len() as u64;
    events::detect(
        &probe.event_source(job),
        &intervals,
        cancel,
        &mut |i, found| {
            all.extend(found);
            reporter.report(Event::Status {
                input: job.input.clone(),
                stage: "events".into(),
                done: i as u64 + 1,
                total,
            });
        },
    )?;
    Ok(all)
}

/// Facts about the input every stage needs.
struct Probe {
    timeline: Timeline,
    total_frames: u64,
    duration: f64,
    video_index: usize,
    audio_index: Option<usize>,
    rotation: u32,
    width: u32,
    height: u32,
}

impl Probe {
    fn open(job: &Job, settings: &CommentarySettings) -> Result<Self, CommentaryError> {
        let ictx = media::open_input(&job.open)?;
        let info = describe(&job.input, &ictx);
        let video = require_video(&info)?.clone();
        let fps = output_frame_rate(video.fps_fraction, settings.max_fps);
        let timeline = Timeline::new(fps, video.start_time);
        let stream_duration = ictx
            .stream(video.index)
            .map(|s| s.duration() as f64 * media::rational_f64(s.time_base()))
            .filter(|d| *d > 0.0);
        let duration = stream_duration.unwrap_or(info.duration);
        if duration <= 0.0 {
            return Err(CommentaryError::Input(
                "the video's duration is unknown (a stream without an index?)".into(),
            ));
        }
        Ok(Probe {
            timeline,
            total_frames: timeline.frames_in(duration).max(1),
            duration,
            video_index: video.index,
            audio_index: info.audio.first().map(|a| a.index),
            rotation: video.rotation,
            // x264 wants even dimensions.
            width: video.display_width & !1,
            height: video.display_height & !1,
        })
    }

    fn event_source(&self, job: &Job) -> EventSource {
        EventSource {
            open: job.open.clone(),
            video_index: self.video_index,
            audio_index: self.audio_index,
            rotation: self.rotation,
            timeline: self.timeline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn intervals_cover_the_video_without_gaps(total in 1u64..100_000, per in 1u64..5_000, min_tail in 0u64..100) {
            let ivs = plan(total, per, min_tail);
            prop_assert_eq!(ivs[0].first, 0);
            for pair in ivs.windows(2) {
                prop_assert_eq!(pair[0].end, Some(pair[1].first));
                prop_assert_eq!(pair[1].first - pair[0].first, per);
            }
            let last = ivs[ivs.len() - 1];
            prop_assert!(last.end.is_none());
            prop_assert!(last.first < total);
            let tail = total - last.first;
            let min_tail = min_tail.min(per);
            if ivs.len() > 1 {
                prop_assert!(tail >= min_tail, "a tail of {} < {} frames is its own chunk", tail, min_tail);
                prop_assert!(tail < per + min_tail.max(1));
            } else {
                prop_assert!(total < per + min_tail.max(1));
            }
        }

        #[test]
        fn chunk_samples_add_up(num in prop::sample::select(vec![24, 25, 30, 50, 60, 30000, 24000, 60000]), frames in 1u64..1_000_000) {
            let den = if num >= 24000 { 1001 } else { 1 };
            let tl = Timeline::new(ff::Rational(num, den), 0.0);
            let per = tl.frames_in(30.0);
            let ivs = plan(frames, per, tl.frames_in(MIN_TAIL_SECS));
            let total: i64 = ivs.iter().map(|iv| {
                tl.sample_of(iv.end.unwrap_or(frames)) - tl.sample_of(iv.first)
            }).sum();
            prop_assert_eq!(total, tl.sample_of(frames));
        }
    }

    #[test]
    fn a_tail_shorter_than_a_second_joins_the_chunk_before_it() {
        let tl = Timeline::new(ff::Rational(50, 1), 0.0);
        let (per, min_tail) = (tl.frames_in(5.0), tl.frames_in(MIN_TAIL_SECS));
        // 15.02 s: three 5 s chunks, the last one frame longer.
        let ivs = plan(751, per, min_tail);
        assert_eq!(ivs.len(), 3);
        assert_eq!((ivs[2].first, ivs[2].end), (500, None));
        // 16 s: the 1 s tail is a chunk of its own.
        assert_eq!(plan(800, per, min_tail).len(), 4);
        // A video shorter than a second is still one chunk.
        assert_eq!(plan(10, per, min_tail).len(), 1);
    }

    #[test]
    fn timeline_converts_frames() {
        let tl = Timeline::new(ff::Rational(25, 1), 0.0);
        assert_eq!(tl.sample_of(25), 48_000);
        assert_eq!(tl.ticks_of(1), 3600);
        assert_eq!(tl.frames_in(30.0), 750);
        let ntsc = Timeline::new(ff::Rational(30000, 1001), 0.0);
        assert_eq!(ntsc.sample_of(30000), 48_048_000);
    }
}
