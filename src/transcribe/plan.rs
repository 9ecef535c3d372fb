//! Where the speech is, and where to cut: voice activity from the level of
//! the samples, and chunks that end in silence.
//!
//! The level is measured in 10 ms frames. What counts as speech is decided
//! relative to the recording itself (the quiet floor and the loud peaks it
//! has), so a steady background sound is silence as long as the voices
//! stand out from it. Speech spans are those loud frames with short pauses
//! inside them bridged; the pauses between spans are where chunks may be
//! cut, so no word is cut in two.

use crate::media::speech::SPEECH_RATE;
use std::ops::Range;

/// Samples per level frame (10 ms).
pub const LEVEL_FRAME: usize = SPEECH_RATE as usize / 100;

/// Pauses shorter than this (frames) are inside a span of speech.
const BRIDGED_PAUSE: usize = 25;

/// Spans shorter than this (frames) are clicks, not speech.
const SHORTEST_SPEECH: usize = 8;

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

    /// The spans of speech, in samples, in order.
    pub fn speech(&self) -> Vec<Range<usize>> {
        let threshold = self.threshold();
        let mut spans: Vec<Range<usize>> = Vec::new();
        let mut run: Option<usize> = None;
        for (i, &db) in self.db.iter().chain(std::iter::once(&FLOOR_DB)).enumerate() {
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

/// Cuts `total` samples into chunks of at most `longest` samples, each
/// ending in the middle of the last pause between `speech` spans that
/// fits; a stretch of speech longer than `longest` without a pause is cut
/// where it must be.
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

/// With no pause between spans in `start..limit`: the end of a span, or
/// the start of one, inside it (a pause before the first span or after
/// the last one).
fn quiet_cut(start: usize, limit: usize, speech: &[Range<usize>]) -> Option<usize> {
    let inside = |p: usize| p > start && p <= limit;
    speech
        .iter()
        .flat_map(|s| [s.end, s.start])
        .filter(|&p| inside(p))
        .filter(|&p| !speech.iter().any(|s| s.start < p && p < s.end))
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
    fn cuts_fall_in_the_middle_of_pauses() {
        let s = |a: usize, b: usize| a * 1000..b * 1000;
        let speech = [s(1, 4), s(6, 9), s(10, 13), s(20, 25)];
        assert_eq!(
            chunks(30_000, 12_000, &speech),
            vec![0..9_500, 9_500..16_500, 16_500..25_000, 25_000..30_000]
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
            let planned = chunks(total, longest, &speech);
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
