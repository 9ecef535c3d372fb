//! Transcribe: speech to timed cues, per chunk and in parallel, offline.
//!
//! Data flow for one input: its first audio stream is decoded once into
//! 16 kHz mono samples ([`decode`], through [`crate::media::speech`]);
//! the level of those samples says where the speech is and where the
//! pauses are ([`plan::Levels`]), and so where the utterances are
//! ([`plan::utterances`]); the recording is cut between utterances into
//! chunks of at most `chunk` ([`plan::chunks`]), so no word is cut in two.
//! Chunks are recognised in parallel on a rayon pool of `jobs` threads,
//! taken in time order:
//!
//! - [`Engine::Libav`]: libavfilter's `asr` filter (PocketSphinx) with a
//!   model from disk, one graph per utterance of the chunk. PocketSphinx
//!   adapts to what it has heard (cepstral mean, noise estimate), so a
//!   graph that heard one utterance hears the next one differently; a
//!   fresh graph per utterance makes the words the same whatever the
//!   chunk length. The recogniser says when it closed an utterance;
//!   [`cues::place`] finds when it was spoken from the speech spans, and
//!   [`cues::split`] cuts it into readable cues.
//! - [`Engine::Command`]: any program, given the chunk as a WAV file and
//!   asked for a transcript ([`command`]); its cues are shifted to the
//!   chunk's place. A failing or hanging program leaves its chunk empty
//!   with a warning, the rest goes on.
//!
//! Finished chunks are put back in time order before anything is
//! reported, so `cue` events and the transcript grow front to back; when
//! the run is stopped, the transcript holds the chunks up to the first
//! one not recognised.
//!
//! [`follow::follow`] does the same on a recording that is still growing.

pub mod command;
pub mod cues;
pub mod follow;
pub mod plan;

use crate::captions::cue::{escape_text, Cue};
use crate::media::speech::{self, SpeechDecoder, SpeechModel, SPEECH_RATE};
use crate::media::{ff, MediaError};
use crate::progress::{Event, Reporter};
use command::CommandEngine;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How chunks are recognised.
#[derive(Debug, Clone)]
pub enum Engine {
    /// libavfilter's `asr` filter (PocketSphinx) with this model.
    Libav(SpeechModel),
    /// An external program per chunk.
    Command(CommandEngine),
}

/// What a transcription needs besides the audio.
#[derive(Debug, Clone)]
pub struct TranscribeSettings {
    /// The recogniser.
    pub engine: Engine,
    /// Longest chunk.
    pub chunk: Duration,
    /// Chunks recognised at once.
    pub jobs: usize,
}

/// Why an input has no transcript.
#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    /// The input has no audio stream.
    #[error("has no audio stream: there is no speech to transcribe")]
    NoAudio,
    /// libav could not read the input or run the recogniser.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The transcript could not be written as it grew.
    #[error("cannot write the transcript: {0}")]
    Write(String),
    /// The rayon pool could not be started.
    #[error("cannot start {jobs} recognition threads: {reason}")]
    Threads {
        /// Threads asked for.
        jobs: usize,
        /// Why not.
        reason: String,
    },
}

/// A transcription's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// Cues in time order, text as WebVTT cue text.
    pub cues: Vec<Cue>,
    /// Chunks recognised (from the first, without a gap).
    pub chunks: usize,
    /// Chunks planned.
    pub planned: usize,
    /// Milliseconds of audio the cues cover (the end of the last chunk
    /// recognised).
    pub covered_ms: u64,
    /// The audio's length in milliseconds.
    pub total_ms: u64,
}

impl Transcript {
    /// Every planned chunk was recognised (not stopped half-way).
    pub fn is_complete(&self) -> bool {
        self.chunks == self.planned
    }
}

/// Milliseconds at 16 kHz sample `n`.
pub fn sample_ms(n: usize) -> u64 {
    n as u64 * 1000 / u64::from(SPEECH_RATE)
}

/// Decodes the first audio stream of `open` into 16 kHz mono samples;
/// `None` when `cancel` was set first.
pub fn decode(open: &str, cancel: &AtomicBool) -> Result<Option<Vec<i16>>, TranscribeError> {
    let mut input = crate::media::open_input(open)?;
    let stream = input
        .streams()
        .best(ff::media::Type::Audio)
        .ok_or(TranscribeError::NoAudio)?;
    let index = stream.index();
    let mut decoder = SpeechDecoder::new(&stream)?;
    let mut samples = Vec::new();
    for (s, packet) in input.packets() {
        if cancel.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if s.index() == index {
            decoder.push(&packet, &mut samples)?;
        }
    }
    decoder.finish(&mut samples)?;
    Ok(Some(samples))
}

/// Transcribes `samples` (16 kHz mono) of `input` (its name in events),
/// reporting chunks and cues to `reporter` as they are recognised, in
/// time order.
pub fn transcribe(
    input: &str,
    samples: &[i16],
    settings: &TranscribeSettings,
    reporter: &dyn Reporter,
    cancel: &AtomicBool,
) -> Result<Transcript, TranscribeError> {
    let speech = plan::Levels::measure(samples).speech();
    let utterances = plan::utterances(&speech, samples.len());
    let longest = (settings.chunk.as_secs_f64() * f64::from(SPEECH_RATE)) as usize;
    let chunks = plan::chunks(samples.len(), longest, &utterances);
    let mut order = InOrder::new(input, reporter, chunks.len(), sample_ms(samples.len()));
    let recogniser = Recogniser::new(&settings.engine, &speech, &utterances)?;
    run_in_order(
        &chunks,
        settings.jobs,
        cancel,
        &mut order,
        |index, range| recogniser.chunk(index, samples, range, cancel),
    )?;
    Ok(order.into_transcript())
}

/// What became of one chunk.
#[derive(Debug)]
pub enum ChunkOutcome {
    /// Recognised: its cues on the recording's timeline.
    Cues(Vec<TimedCue>),
    /// The engine failed on it: no cues, and why.
    Failed(String),
    /// The run is stopping.
    Stopped,
}

/// A cue on the recording's timeline, with plain text.
pub type TimedCue = cues::TimedText;

/// Recognises chunks with one engine; shared by the worker threads.
pub struct Recogniser<'a> {
    engine: &'a Engine,
    speech: &'a [Range<usize>],
    utterances: &'a [Range<usize>],
    scratch: Option<tempfile::TempDir>,
}

impl<'a> Recogniser<'a> {
    /// A recogniser for `engine`; `speech` are the speech spans and
    /// `utterances` the utterances (samples) of the recording, which the
    /// default engine hears one by one and times by the spans.
    pub fn new(
        engine: &'a Engine,
        speech: &'a [Range<usize>],
        utterances: &'a [Range<usize>],
    ) -> Result<Self, TranscribeError> {
        let scratch = match engine {
            Engine::Libav(_) => None,
            Engine::Command(_) => Some(
                tempfile::Builder::new()
                    .prefix("vidpipe-transcribe-")
                    .tempdir()
                    .map_err(|source| MediaError::Io {
                        what: "creating a temp directory for the chunks".into(),
                        source,
                    })?,
            ),
        };
        Ok(Recogniser {
            engine,
            speech,
            utterances,
            scratch,
        })
    }

    /// Recognises `samples[range]`, chunk `index` of the recording.
    pub fn chunk(
        &self,
        index: usize,
        samples: &[i16],
        range: &Range<usize>,
        cancel: &AtomicBool,
    ) -> Result<ChunkOutcome, TranscribeError> {
        let part = &samples[range.clone()];
        let offset = sample_ms(range.start);
        match (self.engine, &self.scratch) {
            (Engine::Libav(model), _) => {
                let mut timed = Vec::new();
                for utterance in within(self.utterances, range) {
                    match self.utterance(model, samples, &utterance, cancel)? {
                        Some(cues) => timed.extend(cues),
                        None => return Ok(ChunkOutcome::Stopped),
                    }
                }
                Ok(ChunkOutcome::Cues(timed))
            }
            (Engine::Command(engine), Some(scratch)) => {
                Ok(engine.chunk(scratch.path(), index, part, offset, cancel))
            }
            (Engine::Command(_), None) => Ok(ChunkOutcome::Failed(
                "no temp directory for the engine's files".into(),
            )),
        }
    }
}

impl Recogniser<'_> {
    /// Recognises one utterance (`range` of `samples`) in a graph of its
    /// own; `None` when stopped.
    fn utterance(
        &self,
        model: &SpeechModel,
        samples: &[i16],
        range: &Range<usize>,
        cancel: &AtomicBool,
    ) -> Result<Option<Vec<TimedCue>>, TranscribeError> {
        let Some(found) = speech::recognise(model, &samples[range.clone()], cancel)? else {
            return Ok(None);
        };
        let closed: Vec<(u64, String)> = found
            .into_iter()
            .map(|r| (sample_ms(range.start + r.closed_at), r.text))
            .collect();
        let spans: Vec<Range<u64>> = within(self.speech, range)
            .map(|s| sample_ms(s.start)..sample_ms(s.end))
            .collect();
        let utterances = cues::place(&closed, &spans);
        Ok(Some(utterances.iter().flat_map(cues::split).collect()))
    }
}

/// The parts of `spans` inside `range`.
fn within<'a>(
    spans: &'a [Range<usize>],
    range: &'a Range<usize>,
) -> impl Iterator<Item = Range<usize>> + 'a {
    spans
        .iter()
        .filter(move |s| s.end > range.start && s.start < range.end)
        .map(move |s| s.start.max(range.start)..s.end.min(range.end))
}

/// Recognises `chunks` (numbered on from the chunks `order` already
/// reported) on a pool of `jobs` threads, taking them in time order, and
/// hands each result to `order`. Stops taking chunks once
/// `cancel` is set or one failed outright.
pub fn run_in_order(
    chunks: &[Range<usize>],
    jobs: usize,
    cancel: &AtomicBool,
    order: &mut InOrder<'_>,
    recognise: impl Fn(usize, &Range<usize>) -> Result<ChunkOutcome, TranscribeError> + Sync,
) -> Result<(), TranscribeError> {
    let jobs = jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("transcribe-{i}"))
        .build()
        .map_err(|e| TranscribeError::Threads {
            jobs,
            reason: e.to_string(),
        })?;
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<TranscribeError>> = Mutex::new(None);
    let shared = Mutex::new(order);
    let first = shared.lock().map(|o| o.next).unwrap_or(0);
    pool.scope(|scope| {
        for _ in 0..jobs.min(chunks.len()) {
            scope.spawn(|_| loop {
                let stop = cancel.load(Ordering::SeqCst)
                    || failed.lock().map(|f| f.is_some()).unwrap_or(true);
                let i = first + next.fetch_add(1, Ordering::SeqCst);
                if stop || i >= first + chunks.len() {
                    return;
                }
                let range = &chunks[i - first];
                if let Ok(mut order) = shared.lock() {
                    order.started();
                }
                match recognise(i, range) {
                    Ok(ChunkOutcome::Stopped) => return,
                    Ok(outcome) => {
                        if let Ok(mut order) = shared.lock() {
                            order.finished(i, range.clone(), outcome);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match failed.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Puts finished chunks back in time order and reports them: the chunk,
/// its cues, the progress bars. Keeps the cues reported so far.
pub struct InOrder<'a> {
    input: &'a str,
    reporter: &'a dyn Reporter,
    next: usize,
    planned: usize,
    waiting: BTreeMap<usize, (Range<usize>, ChunkOutcome)>,
    transcript: Transcript,
    fresh: Vec<Cue>,
}

impl<'a> InOrder<'a> {
    /// For `planned` chunks of `total_ms` of audio (both may grow, see
    /// [`InOrder::plan_more`]).
    pub fn new(input: &'a str, reporter: &'a dyn Reporter, planned: usize, total_ms: u64) -> Self {
        InOrder {
            input,
            reporter,
            next: 0,
            planned,
            waiting: BTreeMap::new(),
            transcript: Transcript {
                planned,
                total_ms,
                ..Transcript::default()
            },
            fresh: Vec::new(),
        }
    }

    /// More chunks and audio became known (a growing recording).
    pub fn plan_more(&mut self, chunks: usize, total_ms: u64) {
        self.planned += chunks;
        self.transcript.planned = self.planned;
        self.transcript.total_ms = total_ms;
    }

    fn started(&mut self) {
        self.status("chunks", self.next as u64, self.planned as u64);
    }

    fn finished(&mut self, index: usize, range: Range<usize>, outcome: ChunkOutcome) {
        self.waiting.insert(index, (range, outcome));
        while let Some((range, outcome)) = self.waiting.remove(&self.next) {
            self.report(self.next, range, outcome);
            self.next += 1;
        }
    }

    fn report(&mut self, index: usize, range: Range<usize>, outcome: ChunkOutcome) {
        let (start, end) = (sample_ms(range.start), sample_ms(range.end));
        let timed = match outcome {
            ChunkOutcome::Cues(timed) => timed,
            ChunkOutcome::Failed(reason) => {
                self.reporter.report(Event::Warning {
                    input: self.input.to_string(),
                    message: format!(
                        "chunk {index} ({} to {}) has no cues: {reason}",
                        crate::captions::cue::format_timestamp(start),
                        crate::captions::cue::format_timestamp(end)
                    ),
                });
                Vec::new()
            }
            ChunkOutcome::Stopped => Vec::new(),
        };
        let words = timed
            .iter()
            .map(|c| c.text.split_whitespace().count())
            .sum();
        self.reporter.report(Event::ChunkTranscribed {
            input: self.input.to_string(),
            index,
            start: start as f64 / 1000.0,
            end: end as f64 / 1000.0,
            words,
        });
        for t in timed {
            self.reporter.report(Event::TranscriptCue {
                input: self.input.to_string(),
                start: t.start as f64 / 1000.0,
                end: t.end as f64 / 1000.0,
                text: t.text.clone(),
            });
            let cue = Cue {
                id: None,
                start: t.start,
                end: t.end,
                settings: String::new(),
                text: escape_text(&t.text),
                line: 0,
            };
            self.fresh.push(cue.clone());
            self.transcript.cues.push(cue);
        }
        self.transcript.chunks = index + 1;
        self.transcript.covered_ms = end;
        self.status(
            "audio seconds",
            end.div_ceil(1000),
            self.transcript.total_ms.div_ceil(1000),
        );
        self.status("chunks", self.next as u64 + 1, self.planned as u64);
    }

    fn status(&self, stage: &str, done: u64, total: u64) {
        self.reporter.report(Event::Status {
            input: self.input.to_string(),
            stage: stage.to_string(),
            done,
            total,
        });
    }

    /// The cues reported since the last call, in time order.
    pub fn take_fresh(&mut self) -> Vec<Cue> {
        std::mem::take(&mut self.fresh)
    }

    /// The transcript so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The transcript, once no more chunks come.
    pub fn into_transcript(self) -> Transcript {
        self.transcript
    }
}
