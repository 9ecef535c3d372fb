//! Where the speech is, and where to cut: voice activity from the level of
//! the samples, utterances, and chunks that end in silence.
//!
//! The level is measured in 10 ms frames. What counts as speech is decided
//! relative to the recording itself (the quiet floor and the loud peaks it
//! has), so a steady background sound is silence as long as the voices
//! stand out from it. Speech spans are those loud frames with short pauses
//! inside them bridged.
//!
//! Utterances ([`utterances`]) are speech spans joined over pauses shorter
//! than [`UTTERANCE_PAUSE`], with a little of the silence around them: the
//! unit the recogniser hears on its own. They depend on the recording
//! alone, never on the chunk length, so a recording is heard the same way
//! whatever `--chunk` is. Chunks ([`chunks`]) are then cut between
//! utterances, so no word is cut in two.

use crate::media::speech::SPEECH_RATE;
use std::ops::Range;

/// Samples per level frame (10 ms).
pub const LEVEL_FRAME: usize = SPEECH_RATE as usize / 100;

/// Pauses shorter than this (frames) are inside a span of speech.
const BRIDGED_PAUSE: usize = 25;

/// Spans shorter than this (frames) are clicks, not speech.
const SHORTEST_SPEECH: usize = 8;

/// Pauses shorter than this (samples, 0.6 s) are inside an utterance.
pub const UTTERANCE_PAUSE: usize = SPEECH_RATE as usize * 6 / 10;

/// Silence kept before and after an utterance (samples, 0.5 s), so the
/// recogniser hears its onset and its end.
const UTTERANCE_MARGIN: usize = SPEECH_RATE as usize / 2;

/// Level of digital silence, dBFS.
const FLOOR_DB: f32 = -100.0;

/// The level of every 10 ms frame of a recording, in dBFS.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Levels {
    /// One value per frame.
    pub db: Vec<f32>,
}

impl Levels {
    /// Measures `samples` (16 kHz mono); a last partial frame counts.
    pub fn measure(samples: &[i16]) -> Self {
        Levels {
            db: samples.chunks(LEVEL_FRAME).map(frame_db).collect(),
        }
    }

    /// The level above which a frame is speech: well above the quiet floor
    /// (10th percentile) and not far below the loud peaks (98th).
    pub fn threshold(&self) -> f32 {
        if self.db.is_empty() {
            return 0.0;
        }
        let mut sorted = self.db.clone();
        sorted.sort_by(f32::total_cmp);
        let at = |q: f32| sorted[((sorted.len() - 1) as f32 * q) as usize];
        let (floor, peak) = (at(0.10), at(0.98));
        (floor + (peak - floor) * 0.35).max(floor + 6.0).max(-55.0)
    }

    /// Adds the level of `samples`, which follow the samples measured so
    /// far (whose count must be a multiple of [`LEVEL_FRAME`]).
    pub fn extend(&mut self, samples: &[i16]) {
        self.db.extend(samples.chunks(LEVEL_FRAME).map(frame_db));
    }

    /// The spans of speech, in samples, in order.
    pub fn speech(&self) -> Vec<Range<usize>> {
        self.speech_from(0, self.threshold())
    }

    /// The level above which a frame is speech, judged on the last
    /// `frames` frames only (a live recording's recent sound).
    pub fn recent_threshold(&self, frames: usize) -> f32 {
        let recent = Levels {
            db: self.db[self.db.len().saturating_sub(frames)..].to_vec(),
        };
        recent.threshold()
    }

    /// The spans of speech from sample `from` on (rounded down to a
    /// frame), frames louder than `threshold` being speech.
    pub fn speech_from(&self, from: usize, threshold: f32) -> Vec<Range<usize>> {
        let first = from / LEVEL_FRAME;
        let mut spans: Vec<Range<usize>> = Vec::new();
        let mut run: Option<usize> = None;
        let levels = self.db.get(first..).unwrap_or_default();
        for (i, &db) in levels.iter().chain(std::iter::once(&FLOOR_DB)).enumerate() {
            let i = i + first;
            match (db > threshold, run) {
                (true, None) => run = Some(i),
                (false, Some(start)) => {
                    match spans.last_mut() {
                        Some(last) if start - last.end <= BRIDGED_PAUSE => last.end = i,
                        _ => spans.push(start..i),
                    }
                    run = None;
                }
                _ => {}
            }
        }
        spans
            .into_iter()
            .filter(|s| s.len() >= SHORTEST_SPEECH)
            .map(|s| s.start * LEVEL_FRAME..s.end * LEVEL_FRAME)
            .collect()
    }
}

fn frame_db(frame: &[i16]) -> f32 {
    let power = frame
        .iter()
        .map(|&s| {
            let x = f64::from(s) / 32768.0;
            x * x
        })
        .sum::<f64>()
        / frame.len().max(1) as f64;
    if power <= 1e-10 {
        FLOOR_DB
    } else {
        (10.0 * power.log10()) as f32
    }
}

/// The utterances of a recording of `total` samples with these `speech`
/// spans: spans joined over pauses shorter than [`UTTERANCE_PAUSE`],
/// widened by [`UTTERANCE_MARGIN`] on each side but never past the middle
/// of the pause to the next one.
pub fn utterances(speech: &[Range<usize>], total: usize) -> Vec<Range<usize>> {
    let mut joined: Vec<Range<usize>> = Vec::new();
    for span in speech {
        match joined.last_mut() {
            Some(last) if span.start.saturating_sub(last.end) < UTTERANCE_PAUSE => {
                last.end = span.end
            }
            _ => joined.push(span.clone()),
        }
    }
    let mut out: Vec<Range<usize>> = Vec::with_capacity(joined.len());
    for (i, u) in joined.iter().enumerate() {
        let before = match i.checked_sub(1).and_then(|p| joined.get(p)) {
            Some(p) => (p.end + u.start).div_ceil(2),
            None => 0,
        };
        let after = match joined.get(i + 1) {
            Some(n) => (u.end + n.start) / 2,
            None => total,
        };
        let start = u.start.saturating_sub(UTTERANCE_MARGIN).max(before);
        let end = (u.end + UTTERANCE_MARGIN).min(after).min(total);
        if start < end {
            out.push(start..end);
        }
    }
    out
}

/// Cuts `total` samples into chunks of at most `longest` samples, each
/// ending in the middle of the last gap between `speech` spans (or
/// utterances) that fits, else at the limit when it falls in a gap, else
/// at the last edge of a span; speech longer than `longest` without a gap
/// is cut where it must be.
pub fn chunks(total: usize, longest: usize, speech: &[Range<usize>]) -> Vec<Range<usize>> {
    let longest = longest.max(LEVEL_FRAME);
    let pauses: Vec<usize> = speech
        .windows(2)
        .map(|w| (w[0].end + w[1].start) / 2)
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    while total - start > longest {
        let limit = start + longest;
        let cut = pauses
            .iter()
            .rev()
            .find(|&&p| p > start && p <= limit)
            .copied()
            .or_else(|| quiet_cut(start, limit, speech))
            .unwrap_or(limit);
        out.push(start..cut);
        start = cut;
    }
    if start < total || out.is_empty() {
        out.push(start..total);
    }
    out
}

/// With no middle of a pause in `start..limit`: the limit itself when it
/// falls in a pause, else the last edge of a span inside it.
fn quiet_cut(start: usize, limit: usize, speech: &[Range<usize>]) -> Option<usize> {
    let in_speech = |p: usize| speech.iter().any(|s| s.start < p && p < s.end);
    if !in_speech(limit) {
        return Some(limit);
    }
    speech
        .iter()
        .flat_map(|s| [s.end, s.start])
        .filter(|&p| p > start && p <= limit && !in_speech(p))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tone(samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples)
            .map(|i| (amplitude * (i as f64 * 0.2).sin() * 32767.0) as i16)
            .collect()
    }

    #[test]
    fn speech_over_a_quiet_background_is_found_where_it_is() {
        let second = SPEECH_RATE as usize;
        let mut samples = tone(2 * second, 0.01);
        samples.extend(tone(second, 0.5));
        samples.extend(tone(2 * second, 0.01));
        samples.extend(tone(second / 2, 0.4));
        samples.extend(tone(second, 0.01));
        let spans = Levels::measure(&samples).speech();
        assert_eq!(
            spans,
            vec![2 * second..3 * second, 5 * second..11 * second / 2]
        );
    }

    #[test]
    fn utterances_join_short_pauses_and_keep_a_margin_of_silence() {
        let second = SPEECH_RATE as usize;
        let ms = |n: usize| n * second / 1000;
        let speech = [ms(2000)..ms(3000), ms(3400)..ms(4000), ms(4700)..ms(5000)];
        assert_eq!(
            utterances(&speech, ms(5200)),
            vec![ms(1500)..ms(4350), ms(4350)..ms(5200)]
        );
    }

    #[test]
    fn cuts_fall_in_the_middle_of_pauses() {
        let s = |a: usize, b: usize| a * 1000..b * 1000;
        let speech = [s(1, 4), s(6, 9), s(10, 13), s(20, 25)];
        assert_eq!(
            chunks(30_000, 12_000, &speech),
            vec![0..9_500, 9_500..16_500, 16_500..28_500, 28_500..30_000]
        );
    }

    proptest! {
        #[test]
        fn chunks_cover_everything_and_never_exceed_the_limit(
            total in 1usize..2_000_000,
            longest in 1usize..500_000,
            cuts in proptest::collection::vec(0usize..2_000_000, 0..40),
        ) {
            let mut cuts = cuts;
            cuts.retain(|&c| c < total);
            cuts.sort_unstable();
            cuts.dedup();
            let speech: Vec<Range<usize>> =
                cuts.chunks_exact(2).map(|w| w[0]..w[1]).filter(|r| !r.is_empty()).collect();
            let planned = chunks(total, longest, &utterances(&speech, total));
            prop_assert_eq!(planned.first().map(|c| c.start), Some(0));
            prop_assert_eq!(planned.last().map(|c| c.end), Some(total));
            for pair in planned.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            for c in &planned {
                prop_assert!(!c.is_empty());
                prop_assert!(c.len() <= longest.max(LEVEL_FRAME));
            }
        }

        #[test]
        fn a_cut_inside_speech_happens_only_without_a_pause_in_reach(
            spans in proptest::collection::vec((1usize..50, 1usize..50), 1..30),
            longest_units in 10usize..80,
        ) {
            let unit = 1000;
            let mut at = 0;
            let speech: Vec<Range<usize>> = spans.iter().map(|&(gap, len)| {
                let s = (at + gap) * unit;
                at += gap + len;
                s..at * unit
            }).collect();
            let total = (at + 5) * unit;
            let longest = longest_units * unit;
            for c in chunks(total, longest, &speech).iter().filter(|c| c.end < total) {
                if let Some(inside) = speech.iter().find(|s| s.start < c.end && c.end < s.end) {
                    // Cutting through speech is allowed only when no pause
                    // (and no span edge) lay between the chunk's start and
                    // its limit.
                    prop_assert!(inside.start <= c.start && c.start + longest <= inside.end,
                        "cut at {} inside {:?} though {:?} had room", c.end, inside, c);
                }
            }
        }
    }
}
