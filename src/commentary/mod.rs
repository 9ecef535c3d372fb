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
//! A state file (settings fingerprint and finished chunks) beside the
//! output makes a re-run keep finished chunks and build only the missing
//! ones; the mixed PCM of each chunk is kept there until the final file
//! exists, because the final audio is encoded once from it.

pub mod chunk;
pub mod concat;
pub mod events;
pub mod mix;
pub mod playlist;
mod process;
pub mod script;
pub mod tts;
pub mod voices;
pub mod writer;

use crate::fsutil::write_atomic;
use crate::hls::output_frame_rate;
use crate::media::audio::SAMPLE_RATE;
use crate::media::probe::{describe, require_video};
use crate::media::video::H264Settings;
use crate::media::{self, ff, MediaError};
use crate::progress::{Event, Reporter};
use crate::storage::Destination;
use crate::units::Bitrate;
use crate::CancelFlag;
use chunk::{BuiltChunk, Source};
use concat::ChunkParts;
use events::{DetectedEvent, EventSource};
use mix::Duck;
use script::{format_time, Line, ScriptError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tts::SpeechBackend;
use voices::{Spoken, VoiceBoard};
use writer::{IntervalInfo, Wording};

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
    /// Local directory for the state file, PCM and temp files.
    pub work_dir: PathBuf,
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

/// Cuts `total` frames (an estimate) into intervals of `per_chunk` frames;
/// the last one runs to the end of the video whatever its real length.
pub fn plan(total: u64, per_chunk: u64) -> Vec<Interval> {
    let per_chunk = per_chunk.max(1);
    let count = total.div_ceil(per_chunk).max(1);
    (0..count)
        .map(|i| Interval {
            index: i as u32,
            first: i * per_chunk,
            end: (i + 1 < count).then_some((i + 1) * per_chunk),
        })
        .collect()
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

const STATE_VERSION: u32 = 1;

/// What a re-run may keep.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    fingerprint: String,
    /// Finished chunks: first and end frame.
    chunks: BTreeMap<u32, (u64, u64)>,
    /// `commentary.mp4` is in place.
    complete: bool,
}

/// Everything one run shares between its threads.
struct Run<'a> {
    job: &'a Job,
    dest: &'a dyn Destination,
    reporter: &'a dyn Reporter,
    settings: &'a CommentarySettings,
    timeline: Timeline,
    intervals: Vec<Interval>,
    state: Mutex<State>,
    /// The chunks handled in order so far.
    in_order: Mutex<InOrder>,
    /// Wakes the in-order thread while chunks are being built.
    in_order_wake: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// What is done with the chunks in order from chunk 0, as soon as each is
/// ready: the final file's audio is encoded on, and with `--hls` the
/// MPEG-TS copy is made and the playlist extended.
struct InOrder {
    /// Chunks handled so far.
    count: usize,
    /// The playlist has been written at least once.
    listed: bool,
    /// The final file's audio.
    audio: Option<concat::FinalAudio>,
    /// The MPEG-TS copies' continuous audio (`--hls`).
    series: Option<concat::TsSeries>,
}

/// Removes the run's scratch directory however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Detected events of a whole video (`--events-only`).
pub fn detect_all(
    job: &Job,
    settings: &CommentarySettings,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
) -> Result<Vec<DetectedEvent>, CommentaryError> {
    let probe = Probe::open(job, settings)?;
    let per_chunk = probe.timeline.frames_in(settings.interval).max(1);
    let intervals = plan(probe.total_frames, per_chunk);
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

fn fingerprint(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Commentates one video into `dest`: chunks, then `commentary.mp4`.
pub fn run(
    job: &Job,
    lines: &LineSource,
    settings: &CommentarySettings,
    backend: &dyn SpeechBackend,
    dest: &dyn Destination,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
) -> Result<Finished, CommentaryError> {
    let probe = Probe::open(job, settings)?;
    let tl = probe.timeline;
    if let LineSource::Script(lines) = lines {
        script::check_times(lines, probe.duration)?;
    }
    reporter.report(Event::Probe {
        input: job.input.clone(),
        width: probe.width,
        height: probe.height,
        duration: probe.duration,
        fps: media::rational_f64(tl.fps()),
        audio: probe.audio_index.is_some(),
    });
    if probe.audio_index.is_none() {
        warn(
            reporter,
            job,
            "the video has no audio: the chunks carry the voice only".into(),
        );
    }
    let per_chunk = tl.frames_in(settings.interval).max(1);
    let intervals = plan(probe.total_frames, per_chunk);
    if probe.total_frames < per_chunk {
        warn(
            reporter,
            job,
            format!(
                "the video ({}) is shorter than one interval ({}): it becomes one short chunk",
                format_time(probe.duration),
                format_time(settings.interval)
            ),
        );
    }
    let identity = fingerprint(&(
        &job.identity,
        settings,
        lines,
        tl,
        per_chunk,
        probe.total_frames,
    ));
    std::fs::create_dir_all(&job.work_dir).map_err(|source| CommentaryError::Write {
        path: job.work_dir.display().to_string(),
        source,
    })?;
    let state = load_state(&job.work_dir, &identity);
    if state.complete && dest.exists(FINAL_KEY) {
        let path = dest.describe(FINAL_KEY);
        reporter.report(Event::Complete {
            input: job.input.clone(),
            path: path.clone(),
            chunks: intervals.len() as u32,
        });
        return Ok(Finished {
            path,
            chunks: intervals.len() as u32,
            built: 0,
        });
    }
    let _ = dest.remove_incomplete("");
    let scratch = Scratch(job.work_dir.join("tmp"));
    let _ = std::fs::remove_dir_all(&scratch.0);
    for dir in [
        &scratch.0,
        &job.work_dir.join("pcm"),
        &job.work_dir.join("chunks"),
    ] {
        std::fs::create_dir_all(dir).map_err(|source| CommentaryError::Write {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let run = Run {
        job,
        dest,
        reporter,
        settings,
        timeline: tl,
        intervals,
        state: Mutex::new(State {
            complete: false,
            ..state
        }),
        in_order: Mutex::new(InOrder {
            count: 0,
            listed: false,
            audio: Some(concat::FinalAudio::new(settings.audio_bitrate.0)?),
            series: None,
        }),
        in_order_wake: Mutex::new(None),
    };
    let kept = run.kept_chunks();
    {
        let mut st = run.lock_state();
        st.chunks.retain(|i, _| kept.contains(i));
    }
    run.save_state()?;
    for &i in &kept {
        run.announce_kept(i);
    }
    run.advance_in_order()?;
    let pending: Vec<Interval> = run
        .intervals
        .iter()
        .filter(|iv| !kept.contains(&iv.index))
        .copied()
        .collect();
    let source = Source {
        open: job.open.clone(),
        video_index: probe.video_index,
        audio_index: probe.audio_index,
        rotation: probe.rotation,
        timeline: tl,
        h264: H264Settings {
            width: probe.width,
            height: probe.height,
            bitrate: settings.video_bitrate.0,
            preset: settings.preset.clone(),
            fps: tl.fps(),
            // One IDR at the start of each chunk, none inside.
            keyint: (per_chunk + 1).min(u64::from(u32::MAX)) as u32,
            threads: 1,
            global_header: true,
        },
        audio_bitrate: settings.audio_bitrate.0,
        voice_delay: settings.voice_delay,
        duck: settings.duck,
    };
    let built = run.build_all(
        &source, &pending, &probe, lines, backend, &scratch.0, cancel,
    )?;
    if cancel.load(Ordering::SeqCst) {
        return Err(CommentaryError::Interrupted);
    }
    let path = run.finish(&scratch.0, cancel)?;
    Ok(Finished {
        path,
        chunks: run.intervals.len() as u32,
        built,
    })
}

/// x264 threads for an encoder that has `cores` to itself: one when it
/// shares the machine, else frame threads at 1.5x the cores as x264 itself
/// would pick, so its threads do not wait on each other with cores idle.
fn encoder_threads(cores: usize) -> usize {
    if cores <= 1 {
        1
    } else {
        cores * 3 / 2
    }
}

fn warn(reporter: &dyn Reporter, job: &Job, message: String) {
    reporter.report(Event::Warning {
        input: job.input.clone(),
        message,
    });
}

fn load_state(work_dir: &Path, fingerprint: &str) -> State {
    let fresh = State {
        version: STATE_VERSION,
        fingerprint: fingerprint.to_string(),
        ..Default::default()
    };
    let Ok(bytes) = std::fs::read(work_dir.join("state.json")) else {
        return fresh;
    };
    match serde_json::from_slice::<State>(&bytes) {
        Ok(s) if s.version == STATE_VERSION && s.fingerprint == fingerprint => s,
        Ok(_) => {
            tracing::info!("settings, script or input changed: building every chunk again");
            fresh
        }
        Err(e) => {
            tracing::warn!("ignoring an unreadable state file: {e}");
            fresh
        }
    }
}

impl Run<'_> {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn save_state(&self) -> Result<(), CommentaryError> {
        let path = self.job.work_dir.join("state.json");
        // Written under the lock: two chunks finishing together must not
        // race on the temp file.
        let state = self.lock_state();
        let bytes = serde_json::to_vec_pretty(&*state).unwrap_or_default();
        write_atomic(&path, &bytes).map_err(|source| CommentaryError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    fn pcm_path(&self, i: u32) -> PathBuf {
        self.job.work_dir.join(format!("pcm/chunk_{i:04}.f32"))
    }

    /// Where the chunk MP4 can be read back locally.
    fn local_chunk(&self, i: u32) -> PathBuf {
        match &self.job.local_output {
            Some(dir) => dir.join(chunk_key(i)),
            None => self.job.work_dir.join(chunk_key(i)),
        }
    }

    /// Chunks of an earlier run that are complete and usable.
    fn kept_chunks(&self) -> Vec<u32> {
        let st = self.lock_state();
        self.intervals
            .iter()
            .filter(|iv| {
                st.chunks.get(&iv.index).is_some_and(|&(first, end)| {
                    first == iv.first
                        && iv.end.is_none_or(|e| e == end)
                        && self.pcm_path(iv.index).is_file()
                        && self.local_chunk(iv.index).is_file()
                        && self.dest.exists(&chunk_key(iv.index))
                        && (!self.settings.hls || self.dest.exists(&ts_key(iv.index)))
                })
            })
            .map(|iv| iv.index)
            .collect()
    }

    fn announce_kept(&self, i: u32) {
        let record = self.lock_state().chunks.get(&i).copied();
        if let Some((first, end)) = record {
            self.reporter.report(Event::ChunkReady {
                input: self.job.input.clone(),
                index: i,
                start: self.timeline.secs_of(first),
                end: self.timeline.secs_of(end),
                path: self.dest.describe(&chunk_key(i)),
            });
        }
    }

    fn status(&self, stage: &str, done: u64, total: u64) {
        self.reporter.report(Event::Status {
            input: self.job.input.clone(),
            stage: stage.into(),
            done,
            total,
        });
    }

    fn write(&self, key: &str, bytes: &[u8]) -> Result<(), CommentaryError> {
        self.dest
            .put(key, bytes)
            .map_err(|source| CommentaryError::Write {
                path: self.dest.describe(key),
                source,
            })
    }

    /// Runs speech workers, the line producer and the chunk builders
    /// together; returns how many chunks were built.
    #[allow(clippy::too_many_arguments)]
    fn build_all(
        &self,
        source: &Source,
        pending: &[Interval],
        probe: &Probe,
        lines: &LineSource,
        backend: &dyn SpeechBackend,
        scratch: &Path,
        cancel: &CancelFlag,
    ) -> Result<u32, CommentaryError> {
        let board = VoiceBoard::default();
        // Stops the helpers (speech workers, event pass) once the chunks
        // are done, or the run failed or was interrupted.
        let halt: CancelFlag = Arc::new(AtomicBool::new(false));
        let events_error: Mutex<Option<CommentaryError>> = Mutex::new(None);
        let in_order_error: Mutex<Option<CommentaryError>> = Mutex::new(None);
        let report_speech = |s: Spoken<'_>| {
            if let Spoken::Failed { line, reason } = s {
                warn(
                    self.reporter,
                    self.job,
                    format!(
                        "{} (at {}): no voice for this line: {reason}; its chunk is made without it",
                        line.origin,
                        format_time(line.at)
                    ),
                );
            }
            let (done, total) = board.counts();
            self.status("speech", done as u64, total as u64);
        };
        let timeout = self.settings.tts_timeout;
        let result = std::thread::scope(|scope| {
            let board = &board;
            let halt = &halt;
            for _ in 0..self.settings.tts_concurrency.max(1) {
                let report = &report_speech;
                scope.spawn(move || {
                    board.work(backend, scratch, timeout, halt, report);
                });
            }
            match lines {
                LineSource::Script(lines) => {
                    board.add(lines.clone(), f64::INFINITY);
                    board.close();
                }
                LineSource::Auto {
                    wording,
                    per_interval,
                } => {
                    let src = probe.event_source(self.job);
                    let events_error = &events_error;
                    scope.spawn(move || {
                        let total = self.intervals.len() as u64;
                        let result =
                            events::detect(&src, &self.intervals, halt, &mut |i, found| {
                                let iv = self.intervals[i];
                                let end =
                                    iv.end.map_or(probe.duration, |e| self.timeline.secs_of(e));
                                let info = IntervalInfo {
                                    index: iv.index,
                                    start: self.timeline.secs_of(iv.first),
                                    end,
                                };
                                let (new, warnings) = writer::lines_for(
                                    &self.job.input,
                                    info,
                                    &found,
                                    *per_interval,
                                    wording,
                                    timeout,
                                    halt,
                                );
                                for w in warnings {
                                    warn(self.reporter, self.job, w);
                                }
                                board.add(new, end);
                                self.status("events", i as u64 + 1, total);
                            });
                        board.close();
                        if let Err(e) = result {
                            if !matches!(e, CommentaryError::Interrupted) {
                                if let Ok(mut slot) = events_error.lock() {
                                    *slot = Some(e);
                                }
                            }
                        }
                    });
                }
            }
            let (wake, woken) = std::sync::mpsc::channel::<()>();
            if let Ok(mut slot) = self.in_order_wake.lock() {
                *slot = Some(wake);
            }
            let in_order_error = &in_order_error;
            scope.spawn(move || {
                for () in woken {
                    if let Err(e) = self.advance_now() {
                        if let Ok(mut slot) = in_order_error.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                }
            });
            let wait = |end: f64| board.wait_until(end, cancel);
            let result = self.build_chunks(source, pending, scratch, &wait, cancel);
            halt.store(true, Ordering::SeqCst);
            board.close();
            if let Ok(mut slot) = self.in_order_wake.lock() {
                // The in-order thread drains what is queued, then ends.
                slot.take();
            }
            result
        });
        if let Some(e) = in_order_error.into_inner().ok().flatten() {
            return Err(e);
        }
        if let Some(e) = events_error.into_inner().ok().flatten() {
            return Err(e);
        }
        result
    }

    /// Builds `pending` chunks: the first alone with every thread (so it is
    /// ready as early as possible), then the rest in parallel, in index
    /// order. A chunk that fails is reported; the others still get built.
    fn build_chunks(
        &self,
        source: &Source,
        pending: &[Interval],
        scratch: &Path,
        wait: &(dyn Fn(f64) -> Option<Vec<voices::PlacedVoice>> + Sync),
        cancel: &CancelFlag,
    ) -> Result<u32, CommentaryError> {
        let cores = if self.settings.threads > 0 {
            self.settings.threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        };
        let total = self.intervals.len() as u64;
        let done = AtomicUsize::new(self.intervals.len() - pending.len());
        self.status("chunks", done.load(Ordering::SeqCst) as u64, total);
        let failures: Mutex<Vec<CommentaryError>> = Mutex::new(Vec::new());
        let build_one = |iv: &Interval, threads: usize| {
            if cancel.load(Ordering::SeqCst) {
                return;
            }
            let outcome = chunk::build(source, iv, threads, scratch, wait, cancel)
                .and_then(|built| self.publish(iv, built));
            match outcome {
                Ok(()) => {
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    self.status("chunks", n as u64, total);
                }
                Err(CommentaryError::Interrupted) => {}
                Err(e) => {
                    if let Ok(mut f) = failures.lock() {
                        f.push(e);
                    }
                }
            }
        };
        let Some((first, rest)) = pending.split_first() else {
            return Ok(0);
        };
        build_one(first, encoder_threads(cores));
        if !rest.is_empty() {
            let workers = cores.min(rest.len()).max(1);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("chunk-{i}"))
                .build()
                .map_err(|e| CommentaryError::Input(format!("cannot start worker threads: {e}")))?;
            let next = AtomicUsize::new(0);
            pool.scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(|_| loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(iv) = rest.get(i) else { break };
                        // One core per chunk while there are more chunks
                        // than workers; the last ones share the cores the
                        // finished workers leave.
                        let running = workers.min(rest.len() - i);
                        build_one(iv, encoder_threads(cores / running));
                    });
                }
            });
        }
        if cancel.load(Ordering::SeqCst) {
            return Err(CommentaryError::Interrupted);
        }
        let mut failures = failures.into_inner().unwrap_or_default();
        if !failures.is_empty() {
            let first = failures.remove(0);
            for other in failures {
                self.reporter.report(Event::Error {
                    input: self.job.input.clone(),
                    message: other.to_string(),
                });
            }
            return Err(first);
        }
        Ok(pending.len() as u32)
    }

    /// Stores a built chunk, records it and announces it.
    fn publish(&self, iv: &Interval, built: BuiltChunk) -> Result<(), CommentaryError> {
        let i = iv.index;
        let pcm = self.pcm_path(i);
        write_atomic(&pcm, &concat::pcm_bytes(&built.pcm)).map_err(|source| {
            CommentaryError::Write {
                path: pcm.display().to_string(),
                source,
            }
        })?;
        if self.job.local_output.is_none() {
            let copy = self.local_chunk(i);
            write_atomic(&copy, &built.mp4).map_err(|source| CommentaryError::Write {
                path: copy.display().to_string(),
                source,
            })?;
        }
        self.write(&chunk_key(i), &built.mp4)?;
        for w in built.warnings {
            warn(self.reporter, self.job, w);
        }
        self.lock_state().chunks.insert(i, (iv.first, built.end));
        self.save_state()?;
        self.reporter.report(Event::ChunkReady {
            input: self.job.input.clone(),
            index: i,
            start: self.timeline.secs_of(iv.first),
            end: self.timeline.secs_of(built.end),
            path: self.dest.describe(&chunk_key(i)),
        });
        self.advance_in_order()
    }

    /// Handles the chunks that are now ready in order from chunk 0: their
    /// PCM goes to the final audio and, with `--hls`, their MPEG-TS copies
    /// are made and listed. While chunks are being built this happens on
    /// its own thread (chunk workers only wake it), so no worker waits for
    /// audio encoding.
    fn advance_in_order(&self) -> Result<(), CommentaryError> {
        let wake = match self.in_order_wake.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        match wake {
            Some(tx) if tx.send(()).is_ok() => Ok(()),
            _ => self.advance_now(),
        }
    }

    fn advance_now(&self) -> Result<(), CommentaryError> {
        let mut in_order = match self.in_order.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        self.advance_locked(&mut in_order)
    }

    fn advance_locked(&self, in_order: &mut InOrder) -> Result<(), CommentaryError> {
        let ready = self.ready_in_order();
        if ready == in_order.count && (in_order.listed || !self.settings.hls) {
            return Ok(());
        }
        for k in in_order.count..ready {
            let iv = self.intervals[k];
            let pcm = concat::read_pcm(&self.pcm_path(iv.index))?;
            if let Some(audio) = in_order.audio.as_mut() {
                audio.push(&pcm)?;
            }
            if self.settings.hls && !self.dest.exists(&ts_key(iv.index)) {
                self.write_ts(in_order, &iv, &pcm)?;
            }
        }
        in_order.count = ready;
        if self.settings.hls {
            let entries = self.playlist_entries(ready);
            let ended = ready == self.intervals.len();
            let text = playlist::event_playlist(&entries, self.settings.interval, ended);
            self.write(PLAYLIST_KEY, text.as_bytes())?;
            in_order.listed = true;
        }
        Ok(())
    }

    /// How many chunks from chunk 0 on are finished.
    fn ready_in_order(&self) -> usize {
        let st = self.lock_state();
        self.intervals
            .iter()
            .take_while(|iv| st.chunks.contains_key(&iv.index))
            .count()
    }

    /// Makes chunk `iv`'s MPEG-TS copy, continuing the audio of the one
    /// before when this run made that too.
    fn write_ts(
        &self,
        in_order: &mut InOrder,
        iv: &Interval,
        pcm: &[f32],
    ) -> Result<(), CommentaryError> {
        if in_order.series.as_ref().map(concat::TsSeries::next_index) != Some(iv.index) {
            in_order.series = Some(concat::TsSeries::new(
                self.settings.audio_bitrate.0,
                self.timeline,
                iv.index,
                iv.first,
            )?);
        }
        let Some(series) = in_order.series.as_mut() else {
            return Ok(());
        };
        let out = self
            .job
            .work_dir
            .join("tmp")
            .join(format!("chunk_{:04}.ts", iv.index));
        let last = iv.index as usize + 1 == self.intervals.len();
        series.segment(iv.index, &self.parts(iv), pcm, last, &out)?;
        let bytes = std::fs::read(&out).map_err(|source| CommentaryError::Write {
            path: out.display().to_string(),
            source,
        })?;
        let _ = std::fs::remove_file(&out);
        self.write(&ts_key(iv.index), &bytes)
    }

    fn parts(&self, iv: &Interval) -> ChunkParts {
        ChunkParts {
            mp4: self.local_chunk(iv.index),
            pcm: self.pcm_path(iv.index),
            first_frame: iv.first,
        }
    }

    fn playlist_entries(&self, count: usize) -> Vec<playlist::Entry> {
        let st = self.lock_state();
        self.intervals
            .iter()
            .take(count)
            .filter_map(|iv| st.chunks.get(&iv.index).map(|&(f, e)| (iv.index, f, e)))
            .map(|(i, first, end)| playlist::Entry {
                uri: format!("chunk_{i:04}.ts"),
                duration: self.timeline.secs_of(end) - self.timeline.secs_of(first),
            })
            .collect()
    }

    /// Joins the chunks into the final file and tidies the state.
    fn finish(&self, scratch: &Path, cancel: &CancelFlag) -> Result<String, CommentaryError> {
        let parts: Vec<ChunkParts> = self.intervals.iter().map(|iv| self.parts(iv)).collect();
        let out = scratch.join(FINAL_KEY);
        let audio = {
            let mut in_order = match self.in_order.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            self.advance_locked(&mut in_order)?;
            in_order.audio.take()
        }
        .ok_or_else(|| CommentaryError::Input("the final audio was already used".into()))?;
        concat::join(&parts, &self.timeline, audio, &out, cancel)?;
        let bytes = std::fs::read(&out).map_err(|source| CommentaryError::Write {
            path: out.display().to_string(),
            source,
        })?;
        self.write(FINAL_KEY, &bytes)?;
        let _ = std::fs::remove_file(&out);
        self.lock_state().complete = true;
        self.save_state()?;
        // The final audio is encoded; the PCM (and bucket copies) can go.
        for iv in &self.intervals {
            let _ = std::fs::remove_file(self.pcm_path(iv.index));
            if self.job.local_output.is_none() {
                let _ = std::fs::remove_file(self.local_chunk(iv.index));
            }
        }
        let path = self.dest.describe(FINAL_KEY);
        self.reporter.report(Event::Complete {
            input: self.job.input.clone(),
            path: path.clone(),
            chunks: self.intervals.len() as u32,
        });
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn intervals_cover_the_video_without_gaps(total in 1u64..100_000, per in 1u64..5_000) {
            let ivs = plan(total, per);
            prop_assert_eq!(ivs[0].first, 0);
            for pair in ivs.windows(2) {
                prop_assert_eq!(pair[0].end, Some(pair[1].first));
                prop_assert_eq!(pair[1].first - pair[0].first, per);
            }
            let last = ivs[ivs.len() - 1];
            prop_assert!(last.end.is_none());
            prop_assert!(last.first < total);
            prop_assert!(total - last.first <= per);
        }

        #[test]
        fn chunk_samples_add_up(num in prop::sample::select(vec![24, 25, 30, 50, 60, 30000, 24000, 60000]), frames in 1u64..1_000_000) {
            let den = if num >= 24000 { 1001 } else { 1 };
            let tl = Timeline::new(ff::Rational(num, den), 0.0);
            let per = tl.frames_in(30.0);
            let ivs = plan(frames, per);
            let total: i64 = ivs.iter().map(|iv| {
                tl.sample_of(iv.end.unwrap_or(frames)) - tl.sample_of(iv.first)
            }).sum();
            prop_assert_eq!(total, tl.sample_of(frames));
        }
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
