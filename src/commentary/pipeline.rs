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
use super::writer::{self, IntervalInfo};
use super::{
    chunk_key, events, fingerprint, lock, plan, playlist, script, ts_key, CommentaryError,
    CommentarySettings, Finished, Interval, Job, LineSource, Probe, Timeline, FINAL_KEY,
    PLAYLIST_KEY,
};
use crate::fsutil::write_atomic;
use crate::media;
use crate::media::video::H264Settings;
use crate::progress::{Event, Reporter};
use crate::state::StateFile;
use crate::storage::Destination;
use crate::CancelFlag;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    let state = load_state(job, &identity, reporter)?;
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

/// The state file in a work directory.
fn state_file(work_dir: &Path) -> StateFile<State> {
    StateFile::new(work_dir.join("state.json"))
}

/// The state of a previous run if it was made for the same fingerprint,
/// else a fresh one; a damaged file is set aside and reported.
fn load_state(
    job: &Job,
    fingerprint: &str,
    reporter: &dyn Reporter,
) -> Result<State, CommentaryError> {
    let fresh = State {
        version: STATE_VERSION,
        fingerprint: fingerprint.to_string(),
        ..Default::default()
    };
    let loaded = state_file(&job.work_dir).load()?;
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
        Ok(state_file(&self.job.work_dir).save(&state)?)
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
        .ok_or_else(|| CommentaryError::Input("the final audio was already used".into()))?;
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
