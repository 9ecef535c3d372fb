//! Live transcription: a recording that is still growing (a file being
//! written, an HLS live playlist), recognised as it arrives.
//!
//! Audio is decoded as it comes ([`crate::media::speech::open_growing`]
//! waits at the end of a growing file). About every second of new audio
//! the level of what arrived is measured, and the utterances that are
//! complete — followed by a pause long enough that nothing can be added
//! to them — are recognised, in chunks, in parallel, exactly as in
//! [`super::transcribe`]. Their cues go to the caller's sink in time
//! order as whole blocks, so a reader of the transcript (`captions
//! --follow`) never sees half a cue. The run ends when the input does
//! (ENDLIST, or a file that stopped growing for `idle`), recognising what
//! is left, or when `cancel` is set, keeping what was recognised.
//!
//! What counts as speech is judged on the last ten minutes of sound, so
//! the judgement follows the recording without re-reading all of it.

use super::plan::{self, Levels, LEVEL_FRAME, UTTERANCE_PAUSE};
use super::{
    run_in_order, sample_ms, InOrder, Recogniser, TranscribeError, TranscribeSettings, Transcript,
};
use crate::captions::cue::Cue;
use crate::media::ff;
use crate::media::speech::{open_growing, SpeechDecoder, SPEECH_RATE};
use crate::progress::Reporter;
use crate::CancelFlag;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Frames the speech threshold is judged on (ten minutes).
const RECENT_FRAMES: usize = 60_000;

/// New audio (samples) between two looks for complete utterances.
const LOOK_EVERY: usize = SPEECH_RATE as usize;

/// Follows the recording `open` (named `input` in events) until it ends,
/// handing the cues of every recognised chunk to `sink` in time order.
pub fn follow(
    open: &str,
    input: &str,
    settings: &TranscribeSettings,
    idle: Duration,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    sink: &mut dyn FnMut(&[Cue]) -> std::io::Result<()>,
) -> Result<Transcript, TranscribeError> {
    let mut ictx = open_growing(open, idle, cancel.clone())?;
    let stream = ictx
        .streams()
        .best(ff::media::Type::Audio)
        .ok_or(TranscribeError::NoAudio)?;
    let index = stream.index();
    let mut decoder = SpeechDecoder::new(&stream)?;
    let longest = (settings.chunk.as_secs_f64() * f64::from(SPEECH_RATE)) as usize;
    let mut live = Live {
        samples: Vec::new(),
        levels: Levels::default(),
        done: 0,
        order: InOrder::new(input, reporter, 0, 0),
    };
    let mut looked_at = 0;
    loop {
        let mut packet = ff::Packet::empty();
        // The end of the input, the idle limit and an interrupt all end
        // the reading the same way.
        let ended = packet.read(&mut ictx).is_err();
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        if ended {
            decoder.finish(&mut live.samples)?;
        } else if packet.stream() == index {
            decoder.push(&packet, &mut live.samples)?;
        }
        if !ended && live.samples.len() < looked_at + LOOK_EVERY {
            continue;
        }
        looked_at = live.samples.len();
        live.measure(ended);
        let upto = if ended {
            live.samples.len()
        } else {
            live.complete_until()
        };
        live.recognise(upto, longest, settings, cancel)?;
        sink(&live.order.take_fresh()).map_err(|e| TranscribeError::Write(e.to_string()))?;
        if ended {
            break;
        }
    }
    Ok(live.order.into_transcript())
}

/// The recording so far and how far it has been recognised.
struct Live<'a> {
    samples: Vec<i16>,
    levels: Levels,
    /// Samples recognised (a chunk boundary).
    done: usize,
    order: InOrder<'a>,
}

impl Live<'_> {
    /// Measures the level of the whole frames not yet measured (and, at
    /// the end, of the last partial one).
    fn measure(&mut self, ended: bool) {
        let measured = self.levels.db.len() * LEVEL_FRAME;
        let whole = if ended {
            self.samples.len()
        } else {
            self.samples.len() / LEVEL_FRAME * LEVEL_FRAME
        };
        if whole > measured {
            self.levels.extend(&self.samples[measured..whole]);
        }
    }

    /// The speech spans after what was recognised.
    fn speech(&self) -> Vec<Range<usize>> {
        let threshold = self.levels.recent_threshold(RECENT_FRAMES);
        self.levels
            .speech_from(self.done, threshold)
            .into_iter()
            .map(|s| s.start.max(self.done)..s.end)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Where the complete utterances end: the end of the last utterance
    /// whose speech was followed by a full [`UTTERANCE_PAUSE`] of silence
    /// that has arrived (nothing can be added to it any more), or `done`
    /// when there is none.
    fn complete_until(&self) -> usize {
        let measured = self.levels.db.len() * LEVEL_FRAME;
        let speech = self.speech();
        let relative = shift(&speech, self.done, false);
        let utterances = shift(
            &plan::utterances(&relative, measured - self.done),
            self.done,
            true,
        );
        utterances
            .iter()
            .filter(|u| {
                let spoken_end = speech
                    .iter()
                    .filter(|s| s.start < u.end)
                    .map(|s| s.end)
                    .max()
                    .unwrap_or(u.end);
                spoken_end + UTTERANCE_PAUSE <= measured
            })
            .map(|u| u.end)
            .next_back()
            .unwrap_or(self.done)
    }

    /// Recognises `done..upto` in chunks and reports them.
    fn recognise(
        &mut self,
        upto: usize,
        longest: usize,
        settings: &TranscribeSettings,
        cancel: &CancelFlag,
    ) -> Result<(), TranscribeError> {
        if upto <= self.done {
            return Ok(());
        }
        let speech: Vec<Range<usize>> = self
            .speech()
            .into_iter()
            .filter(|s| s.start < upto)
            .map(|s| s.start..s.end.min(upto))
            .collect();
        let relative = shift(&speech, self.done, false);
        let length = upto - self.done;
        let utterances = shift(&plan::utterances(&relative, length), self.done, true);
        let chunks = shift(
            &plan::chunks(length, longest, &shift(&utterances, self.done, false)),
            self.done,
            true,
        );
        self.order
            .plan_more(chunks.len(), sample_ms(self.samples.len()));
        let recogniser = Recogniser::new(&settings.engine, &speech, &utterances)?;
        let samples = &self.samples;
        run_in_order(
            &chunks,
            settings.jobs,
            cancel,
            &mut self.order,
            |i, range| recogniser.chunk(i, samples, range, cancel),
        )?;
        if !cancel.load(Ordering::SeqCst) {
            self.done = upto;
        }
        Ok(())
    }
}

/// `spans` moved by `by` samples, later (`forward`) or earlier.
fn shift(spans: &[Range<usize>], by: usize, forward: bool) -> Vec<Range<usize>> {
    spans
        .iter()
        .map(|s| {
            if forward {
                s.start + by..s.end + by
            } else {
                s.start - by..s.end - by
            }
        })
        .collect()
}
