//! The voice board: commentary lines, their synthesised voices, and who is
//! waiting for which.
//!
//! Lines arrive all at once (a script) or interval by interval (`--auto`,
//! as the event pass moves through the video). A small pool of speech
//! workers takes lines in time order and resolves each to PCM or to a
//! failure; a chunk waits only for the lines that can sound inside it
//! (every line before its end), so chunk 0 mixes as soon as its own lines
//! are spoken while later lines are still being synthesised.

use super::script::{Line, Speech};
use super::tts::{synthesize, SpeechBackend};
use crate::media::pcm::decode_file;
use crate::CancelFlag;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// A line whose voice is ready to mix.
#[derive(Debug, Clone)]
pub struct PlacedVoice {
    /// The line's time (the voice starts `voice_delay` later).
    pub at: f64,
    /// Where the line came from (`script.yaml:7`).
    pub origin: String,
    /// The voice, interleaved stereo f32 at 48 kHz.
    pub pcm: Arc<Vec<f32>>,
}

#[derive(Debug, Clone)]
enum State {
    Pending,
    Ready(Arc<Vec<f32>>),
    Failed,
}

#[derive(Debug, Default)]
struct Inner {
    lines: Vec<Line>,
    states: Vec<State>,
    queue: VecDeque<usize>,
    /// Every line before this time is on the board.
    known_until: f64,
    /// No more lines will come.
    closed: bool,
}

/// Lines and voices shared by the speech workers and the chunk builders.
#[derive(Debug, Default)]
pub struct VoiceBoard {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// What a speech worker reports after each line.
pub enum Spoken<'a> {
    /// The line's voice is ready.
    Ready {
        /// The line.
        line: &'a Line,
    },
    /// The line has no voice; the message says why.
    Failed {
        /// The line.
        line: &'a Line,
        /// Why.
        reason: String,
    },
}

impl VoiceBoard {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        super::lock(&self.inner)
    }

    /// Adds lines (in time order) and declares every line before
    /// `known_until` present.
    pub fn add(&self, lines: Vec<Line>, known_until: f64) {
        let mut inner = self.lock();
        for line in lines {
            let index = inner.lines.len();
            inner.lines.push(line);
            inner.states.push(State::Pending);
            inner.queue.push_back(index);
        }
        inner.known_until = inner.known_until.max(known_until);
        drop(inner);
        self.changed.notify_all();
    }

    /// No more lines will be added.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.known_until = f64::INFINITY;
        drop(inner);
        self.changed.notify_all();
    }

    /// Lines on the board and how many are resolved.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let done = inner
            .states
            .iter()
            .filter(|s| !matches!(s, State::Pending))
            .count();
        (done, inner.lines.len())
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.lock().lines.clone()
    }

    /// Waits until every line before `end` is on the board and resolved;
    /// returns the voices among them. `None` when cancelled.
    pub fn wait_until(&self, end: f64, cancel: &CancelFlag) -> Option<Vec<PlacedVoice>> {
        let mut inner = self.lock();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            let known = inner.known_until >= end || inner.closed;
            let resolved = inner
                .lines
                .iter()
                .zip(&inner.states)
                .all(|(l, s)| l.at >= end || !matches!(s, State::Pending));
            if known && resolved {
                return Some(
                    inner
                        .lines
                        .iter()
                        .zip(&inner.states)
                        .filter(|(l, _)| l.at < end)
                        .filter_map(|(l, s)| match s {
                            State::Ready(pcm) => Some(PlacedVoice {
                                at: l.at,
                                origin: l.origin.clone(),
                                pcm: pcm.clone(),
                            }),
                            _ => None,
                        })
                        .collect(),
                );
            }
            inner = match self.changed.wait_timeout(inner, Duration::from_millis(200)) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Runs one speech worker until the board is closed and drained (or
    /// the run is cancelled); `report` hears about every line.
    pub fn work(
        &self,
        backend: &dyn SpeechBackend,
        scratch: &Path,
        timeout: Duration,
        cancel: &CancelFlag,
        report: &(dyn Fn(Spoken<'_>) + Sync),
    ) {
        while let Some((index, line)) = self.next_job(cancel) {
            let result = speak(&line, index, backend, scratch, timeout, cancel);
            let mut inner = self.lock();
            inner.states[index] = match &result {
                Ok(pcm) => State::Ready(Arc::new(pcm.clone())),
                Err(_) => State::Failed,
            };
            drop(inner);
            self.changed.notify_all();
            match result {
                Ok(_) => report(Spoken::Ready { line: &line }),
                Err(reason) => report(Spoken::Failed {
                    line: &line,
                    reason,
                }),
            }
        }
    }

    fn next_job(&self, cancel: &CancelFlag) -> Option<(usize, Line)> {
        let mut inner = self.lock();
        loop {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(index) = inner.queue.pop_front() {
                return Some((index, inner.lines[index].clone()));
            }
            if inner.closed {
                return None;
            }
            inner = match self.changed.wait_timeout(inner, Duration::from_millis(200)) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The voice of one line: synthesised (text) or decoded (audio file).
fn speak(
    line: &Line,
    index: usize,
    backend: &dyn SpeechBackend,
    scratch: &Path,
    timeout: Duration,
    stop: &CancelFlag,
) -> Result<Vec<f32>, String> {
    let decode = |path: &Path| {
        let pcm = decode_file(&path.to_string_lossy()).map_err(|e| e.to_string())?;
        if pcm.is_empty() {
            Err(format!("{} holds no audio", path.display()))
        } else {
            Ok(pcm)
        }
    };
    match &line.speech {
        Speech::Audio(path) => decode(path),
        Speech::Text(text) => {
            let out = scratch.join(format!("line_{index:05}.wav"));
            synthesize(backend, text, &out, timeout, stop).map_err(|e| e.to_string())?;
            let pcm = decode(&out);
            let _ = std::fs::remove_file(&out);
            pcm
        }
    }
}
