//! One commentary run, from a probed video to `commentary.mp4`.
//!
//! Threads of a run: speech workers (the voice board's pool), the line
//! producer (`--auto`: the event pass), the chunk builders (chunk 0 alone
//! with every thread, then a rayon pool), and the in-order thread, which
//! takes chunks as they become ready from chunk 0 on: it encodes the final
//! file's audio and, with `--hls`, makes the MPEG-TS copies and extends the
//! playlist. The state file is rewritten after every chunk.

use super::chunk::{self, BuiltChunk, Source};
use super::concat::{self, ChunkParts};
use super::script::format_time;
use super::tts::SpeechBackend;
use super::voices::{self, Spoken, VoiceBoard};
use super::writer::{self, IntervalInfo, Wording};
use super::{
    chunk_key, events, lock, plan, playlist, script, ts_key, CommentaryError, CommentarySettings,
    Finished, Interval, Job, LineSource, Probe, Timeline, FINAL_KEY, MIN_TAIL_SECS, PLAYLIST_KEY,
};
use crate::fingerprint::fingerprint;
use crate::fsutil::write_atomic;
use crate::media;
use crate::media::video::{encoder_threads, H264Settings};
use crate::progress::{Event, Reporter};
use crate::state::{StateFile, StatePlace, StoredState};
use crate::storage::Destination;
use crate::CancelFlag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const STATE_VERSION: u32 = 1;

/// The work directory's layout, also used beside a bucket output under
/// [`STATE_PREFIX`] when the state lives there ([`Job::state_in_output`]).
const STATE_FILE: &str = "state.json";

/// Where the state lives beside a bucket output.
const STATE_PREFIX: &str = ".vidpipe/commentary/";

/// A chunk's mixed audio, relative to the work directory or
/// [`STATE_PREFIX`].
fn pcm_name(i: u32) -> String {
    format!("pcm/chunk_{i:04}.f32")
}

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
    /// Where `state` is saved.
    place: StatePlace<'a, State>,
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
    let probe = probe_video(job, lines, settings, reporter)?;
    let tl = probe.timeline;
    let per_chunk = tl.frames_in(settings.interval).max(1);
    let intervals = plan_chunks(job, settings, reporter, &probe, per_chunk);
    let identity = fingerprint(&(
        &job.identity,
        settings,
        lines,
        tl,
        per_chunk,
        probe.total_frames,
        &intervals,
    ));
    create_dir(&job.work_dir)?;
    let place = state_place(job, dest);
    let state = load_state(job, &place, &identity, reporter)?;
    if state.complete && dest.exists(FINAL_KEY) {
        return Ok(already_complete(
            job,
            dest,
            reporter,
            intervals.len() as u32,
        ));
    }
    let scratch = prepare_work_dir(job, dest)?;
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
        place,
        in_order: Mutex::new(InOrder::new(settings)?),
        in_order_wake: Mutex::new(None),
    };
    let pending = run.keep_finished()?;
    let source = chunk_source(job, settings, &probe, per_chunk);
    let speech = Speech {
        lines,
        backend,
        probe: &probe,
    };
    let built = run.build_all(&source, &pending, &speech, &scratch.0, cancel)?;
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

/// Where a run's voices come from: its lines, the backend that speaks
/// them, and the probed video the event pass (`--auto`) reads.
struct Speech<'a> {
    lines: &'a LineSource,
    backend: &'a dyn SpeechBackend,
    probe: &'a Probe,
}

/// What the chunk builders' helpers (speech workers, the line producer,
/// the in-order thread) share.
#[derive(Default)]
struct Helpers {
    board: VoiceBoard,
    /// Stops the helpers (speech workers, event pass) once the chunks are
    /// done, or the run failed or was interrupted.
    halt: CancelFlag,
    /// Why the event pass failed.
    events_error: Mutex<Option<CommentaryError>>,
    /// The in-order thread's first failure.
    in_order_error: Mutex<Option<CommentaryError>>,
}

impl Helpers {
    /// The chunk builders' result, unless a helper failed: the in-order
    /// thread's failure first, then the event pass's.
    fn outcome(self, built: Result<u32, CommentaryError>) -> Result<u32, CommentaryError> {
        if let Some(e) = self.in_order_error.into_inner().ok().flatten() {
            return Err(e);
        }
        if let Some(e) = self.events_error.into_inner().ok().flatten() {
            return Err(e);
        }
        built
    }
}

impl InOrder {
    /// Nothing handled yet; the final audio's encoder is open.
    fn new(settings: &CommentarySettings) -> Result<Self, CommentaryError> {
        Ok(InOrder {
            count: 0,
            listed: false,
            audio: Some(concat::FinalAudio::new(settings.audio_bitrate.0)?),
            series: None,
        })
    }
}

/// Opens the video, checks the script's times against its length, and
/// announces it (warning when it has no audio).
fn probe_video(
    job: &Job,
    lines: &LineSource,
    settings: &CommentarySettings,
    reporter: &dyn Reporter,
) -> Result<Probe, CommentaryError> {
    let probe = Probe::open(job, settings)?;
    if let LineSource::Script(lines) = lines {
        script::check_times(lines, probe.duration)?;
    }
    reporter.report(Event::Probe {
        input: job.input.clone(),
        index: job.position.index,
        total: job.position.total,
        share: job.position.share,
        width: probe.width,
        height: probe.height,
        duration: probe.duration,
        fps: media::rational_f64(probe.timeline.fps()),
        audio: probe.audio_index.is_some(),
    });
    if probe.audio_index.is_none() {
        warn(
            reporter,
            job,
            "the video has no audio: the chunks carry the voice only".into(),
        );
    }
    Ok(probe)
}

/// Cuts the video into intervals of `per_chunk` frames, warning when it is
/// shorter than one.
fn plan_chunks(
    job: &Job,
    settings: &CommentarySettings,
    reporter: &dyn Reporter,
    probe: &Probe,
    per_chunk: u64,
) -> Vec<Interval> {
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
    plan(
        probe.total_frames,
        per_chunk,
        probe.timeline.frames_in(MIN_TAIL_SECS),
    )
}

fn create_dir(dir: &Path) -> Result<(), CommentaryError> {
    std::fs::create_dir_all(dir).map_err(|source| CommentaryError::Write {
        path: dir.display().to_string(),
        source,
    })
}

/// What a re-run of a finished commentary reports: the final file, nothing
/// built.
fn already_complete(
    job: &Job,
    dest: &dyn Destination,
    reporter: &dyn Reporter,
    chunks: u32,
) -> Finished {
    let path = dest.describe(FINAL_KEY);
    reporter.report(Event::Complete {
        input: job.input.clone(),
        path: path.clone(),
        chunks,
    });
    Finished {
        path,
        chunks,
        built: 0,
    }
}

/// Removes what an interrupted run left (temp files in the output, the
/// scratch directory) and makes the work directories.
fn prepare_work_dir(job: &Job, dest: &dyn Destination) -> Result<Scratch, CommentaryError> {
    let _ = dest.remove_incomplete("");
    let scratch = Scratch(job.work_dir.join("tmp"));
    let _ = std::fs::remove_dir_all(&scratch.0);
    for dir in [
        &scratch.0,
        &job.work_dir.join("pcm"),
        &job.work_dir.join("chunks"),
    ] {
        create_dir(dir)?;
    }
    Ok(scratch)
}

/// What every chunk is cut from and encoded with.
fn chunk_source(job: &Job, settings: &CommentarySettings, probe: &Probe, per_chunk: u64) -> Source {
    let tl = probe.timeline;
    Source {
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
    }
}

/// Builds `chunks` in index order on a pool of at most `cores` workers,
/// each chunk's encoder getting a share of the cores.
fn build_in_parallel(
    chunks: &[Interval],
    cores: usize,
    build_one: &(dyn Fn(&Interval, usize) + Sync),
) -> Result<(), CommentaryError> {
    if chunks.is_empty() {
        return Ok(());
    }
    let workers = cores.min(chunks.len()).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("chunk-{i}"))
        .build()
        .map_err(|e| CommentaryError::Internal(format!("cannot start worker threads: {e}")))?;
    let next = AtomicUsize::new(0);
    pool.scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(iv) = chunks.get(i) else { break };
                // One core per chunk while there are more chunks than
                // workers; the last ones share the cores the finished
                // workers leave.
                let running = workers.min(chunks.len() - i);
                build_one(iv, encoder_threads((cores / running) as f64));
            });
        }
    });
    Ok(())
}

fn warn(reporter: &dyn Reporter, job: &Job, message: String) {
    reporter.report(Event::Warning {
        input: job.input.clone(),
        message,
    });
}

/// Where a job's state is kept: in the bucket beside the output, or in
/// the work directory.
fn state_place<'a>(job: &Job, dest: &'a dyn Destination) -> StatePlace<'a, State> {
    if job.state_in_output {
        StatePlace::Stored(StoredState::new(
            dest,
            format!("{STATE_PREFIX}{STATE_FILE}"),
        ))
    } else {
        StatePlace::File(StateFile::new(job.work_dir.join(STATE_FILE)))
    }
}

/// Where a job's state is kept, for messages.
pub fn state_location(job: &Job, dest: &dyn Destination) -> String {
    state_place(job, dest).describe()
}

/// The state of a previous run if it was made for the same fingerprint,
/// else a fresh one; a damaged file is set aside and reported.
fn load_state(
    job: &Job,
    place: &StatePlace<'_, State>,
    fingerprint: &str,
    reporter: &dyn Reporter,
) -> Result<State, CommentaryError> {
    let fresh = State {
        version: STATE_VERSION,
        fingerprint: fingerprint.to_string(),
        ..Default::default()
    };
    let loaded = place.load()?;
    Ok(match loaded.reported(reporter, &job.input) {
        Some(s) if s.version == STATE_VERSION && s.fingerprint == fingerprint => s,
        Some(_) => {
            tracing::info!("settings, script or input changed: building every chunk again");
            fresh
        }
        None => fresh,
    })
}

impl Run<'_> {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn save_state(&self) -> Result<(), CommentaryError> {
        // Written under the lock: two chunks finishing together must not
        // race on the temp file.
        let state = self.lock_state();
        Ok(self.place.save(&state)?)
    }

    fn pcm_path(&self, i: u32) -> PathBuf {
        self.job.work_dir.join(pcm_name(i))
    }

    /// Where chunk `i`'s mixed audio is kept beside the output.
    fn pcm_key(i: u32) -> String {
        format!("{STATE_PREFIX}{}", pcm_name(i))
    }

    /// Makes chunk `i`'s mixed audio and MP4 readable here, fetching them
    /// from beside the output when this machine has not got them (the run
    /// moved); `false` when they cannot be had, and the chunk is built
    /// again.
    fn have_locally(&self, i: u32) -> bool {
        let wanted = [
            (self.pcm_path(i), Self::pcm_key(i)),
            (self.local_chunk(i), chunk_key(i)),
        ];
        wanted.iter().all(|(path, key)| {
            path.is_file()
                || (self.job.state_in_output
                    && self
                        .dest
                        .get(key)
                        .and_then(|bytes| write_atomic(path, &bytes))
                        .inspect_err(|e| {
                            tracing::info!(
                                "{} cannot be fetched, the chunk is made again: {e}",
                                self.dest.describe(key)
                            )
                        })
                        .is_ok())
        })
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
                        && self.dest.exists(&chunk_key(iv.index))
                        && (!self.settings.hls || self.dest.exists(&ts_key(iv.index)))
                        && self.have_locally(iv.index)
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

    /// Keeps the finished chunks of an earlier run (announced, and handed
    /// to the in-order side) and returns the intervals still to build.
    fn keep_finished(&self) -> Result<Vec<Interval>, CommentaryError> {
        let kept = self.kept_chunks();
        self.lock_state().chunks.retain(|i, _| kept.contains(i));
        self.save_state()?;
        for &i in &kept {
            self.announce_kept(i);
        }
        self.advance_in_order()?;
        Ok(self
            .intervals
            .iter()
            .filter(|iv| !kept.contains(&iv.index))
            .copied()
            .collect())
    }

    /// Runs speech workers, the line producer and the chunk builders
    /// together; returns how many chunks were built.
    fn build_all(
        &self,
        source: &Source,
        pending: &[Interval],
        speech: &Speech<'_>,
        scratch: &Path,
        cancel: &CancelFlag,
    ) -> Result<u32, CommentaryError> {
        let helpers = Helpers::default();
        let result = std::thread::scope(|scope| {
            for _ in 0..self.settings.tts_concurrency.max(1) {
                scope.spawn(|| self.speak(&helpers, speech.backend, scratch));
            }
            self.produce_lines(scope, &helpers, speech);
            let woken = self.open_wake();
            let in_order_error = &helpers.in_order_error;
            scope.spawn(move || self.advance_when_woken(woken, in_order_error));
            let wait = |end: f64| helpers.board.wait_until(end, cancel);
            let result = self.build_chunks(source, pending, scratch, &wait, cancel);
            helpers.halt.store(true, Ordering::SeqCst);
            helpers.board.close();
            self.close_wake();
            result
        });
        helpers.outcome(result)
    }

    /// One speech worker: speaks the board's lines until it is closed or
    /// the helpers halt.
    fn speak(&self, helpers: &Helpers, backend: &dyn SpeechBackend, scratch: &Path) {
        let report = |s: Spoken<'_>| self.spoken(&helpers.board, s);
        let timeout = self.settings.tts_timeout;
        helpers
            .board
            .work(backend, scratch, timeout, &helpers.halt, &report);
    }

    /// Reports a spoken line: a warning when it got no voice, and the
    /// speech progress.
    fn spoken(&self, board: &VoiceBoard, s: Spoken<'_>) {
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
    }

    /// Puts the lines on the board: a script's at once, `--auto`'s
    /// interval by interval from the event pass on a thread of its own.
    fn produce_lines<'s>(
        &'s self,
        scope: &'s std::thread::Scope<'s, '_>,
        helpers: &'s Helpers,
        speech: &'s Speech<'_>,
    ) {
        match speech.lines {
            LineSource::Script(lines) => {
                helpers.board.add(lines.clone(), f64::INFINITY);
                helpers.board.close();
            }
            LineSource::Auto {
                wording,
                per_interval,
            } => {
                let probe = speech.probe;
                scope.spawn(move || self.detect_events(helpers, probe, wording, *per_interval));
            }
        }
    }

    /// The event pass (`--auto`): words each interval's events into lines
    /// as soon as they are final, then closes the board. Its failure is
    /// kept for the end of the run.
    fn detect_events(
        &self,
        helpers: &Helpers,
        probe: &Probe,
        wording: &Wording,
        per_interval: usize,
    ) {
        let src = probe.event_source(self.job);
        let halt = &helpers.halt;
        let total = self.intervals.len() as u64;
        let result = events::detect(&src, &self.intervals, halt, &mut |i, found| {
            let iv = self.intervals[i];
            let end = iv.end.map_or(probe.duration, |e| self.timeline.secs_of(e));
            let info = IntervalInfo {
                index: iv.index,
                start: self.timeline.secs_of(iv.first),
                end,
            };
            let timeout = self.settings.tts_timeout;
            let (new, warnings) = writer::lines_for(
                &self.job.input,
                info,
                &found,
                per_interval,
                wording,
                timeout,
                halt,
            );
            for w in warnings {
                warn(self.reporter, self.job, w);
            }
            helpers.board.add(new, end);
            self.status("events", i as u64 + 1, total);
        });
        helpers.board.close();
        if let Err(e) = result {
            if !matches!(e, CommentaryError::Interrupted) {
                if let Ok(mut slot) = helpers.events_error.lock() {
                    *slot = Some(e);
                }
            }
        }
    }

    /// From now on chunk workers only wake the in-order thread (see
    /// [`Run::advance_in_order`]); returns what that thread listens on.
    fn open_wake(&self) -> std::sync::mpsc::Receiver<()> {
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        if let Ok(mut slot) = self.in_order_wake.lock() {
            *slot = Some(wake);
        }
        woken
    }

    /// The in-order thread: handles the chunks ready in order each time it
    /// is woken, until the wake-ups end; keeps its first failure.
    fn advance_when_woken(
        &self,
        woken: std::sync::mpsc::Receiver<()>,
        error: &Mutex<Option<CommentaryError>>,
    ) {
        for () in woken {
            if let Err(e) = self.advance_now() {
                if let Ok(mut slot) = error.lock() {
                    slot.get_or_insert(e);
                }
            }
        }
    }

    /// Ends the wake-ups: the in-order thread drains what is queued, then
    /// ends.
    fn close_wake(&self) {
        if let Ok(mut slot) = self.in_order_wake.lock() {
            slot.take();
        }
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
        let cores = media::video::cores(self.settings.threads);
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
        build_one(first, encoder_threads(cores as f64));
        build_in_parallel(rest, cores, &build_one)?;
        if cancel.load(Ordering::SeqCst) {
            return Err(CommentaryError::Interrupted);
        }
        self.first_failure(failures.into_inner().unwrap_or_default())?;
        Ok(pending.len() as u32)
    }

    /// The first of the chunks' failures; the others are reported.
    fn first_failure(&self, mut failures: Vec<CommentaryError>) -> Result<(), CommentaryError> {
        if failures.is_empty() {
            return Ok(());
        }
        let first = failures.remove(0);
        for other in failures {
            self.reporter.report(Event::Error {
                input: self.job.input.clone(),
                message: other.to_string(),
            });
        }
        Err(first)
    }

    /// Stores a built chunk, records it and announces it.
    fn publish(&self, iv: &Interval, built: BuiltChunk) -> Result<(), CommentaryError> {
        let i = iv.index;
        let pcm = self.pcm_path(i);
        let pcm_bytes = concat::pcm_bytes(&built.pcm);
        write_atomic(&pcm, &pcm_bytes).map_err(|source| CommentaryError::Write {
            path: pcm.display().to_string(),
            source,
        })?;
        if self.job.local_output.is_none() {
            let copy = self.local_chunk(i);
            write_atomic(&copy, &built.mp4).map_err(|source| CommentaryError::Write {
                path: copy.display().to_string(),
                source,
            })?;
        }
        self.write(&chunk_key(i), &built.mp4)?;
        if self.job.state_in_output {
            // Before the state records the chunk, so a run that moves
            // finds everything the state lists.
            self.write(&Self::pcm_key(i), &pcm_bytes)?;
        }
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
        let wake = lock(&self.in_order_wake).clone();
        match wake {
            Some(tx) if tx.send(()).is_ok() => Ok(()),
            _ => self.advance_now(),
        }
    }

    fn advance_now(&self) -> Result<(), CommentaryError> {
        self.advance_locked(&mut lock(&self.in_order))
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
        let bytes = chunk::read_and_remove(&out)?;
        self.write(&ts_key(iv.index), &bytes)
    }

    /// Removes chunks numbered past the last one, left by an earlier run
    /// with other settings (a shorter interval), so `chunks/` holds exactly
    /// this commentary.
    fn remove_stale_chunks(&self) {
        let mut i = self.intervals.len() as u32;
        while self.dest.exists(&chunk_key(i)) || self.dest.exists(&ts_key(i)) {
            for key in [chunk_key(i), ts_key(i)] {
                if let Err(e) = self.dest.delete(&key) {
                    tracing::warn!("cannot remove {}: {e}", self.dest.describe(&key));
                }
            }
            i += 1;
        }
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
            let mut in_order = lock(&self.in_order);
            self.advance_locked(&mut in_order)?;
            in_order.audio.take()
        }
        .ok_or_else(|| CommentaryError::Internal("the final audio was already used".into()))?;
        concat::join(&parts, &self.timeline, audio, &out, cancel)?;
        let bytes = chunk::read_and_remove(&out)?;
        self.write(FINAL_KEY, &bytes)?;
        self.lock_state().complete = true;
        self.save_state()?;
        self.remove_stale_chunks();
        // The final audio is encoded; the PCM (and bucket copies) can go.
        for iv in &self.intervals {
            let _ = std::fs::remove_file(self.pcm_path(iv.index));
            if self.job.local_output.is_none() {
                let _ = std::fs::remove_file(self.local_chunk(iv.index));
            }
            if self.job.state_in_output {
                let key = Self::pcm_key(iv.index);
                if let Err(e) = self.dest.delete(&key) {
                    tracing::warn!("cannot remove {}: {e}", self.dest.describe(&key));
                }
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
