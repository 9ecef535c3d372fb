//! The commentary mix of one chunk, as a libavfilter graph.
//!
//! Inputs: the chunk's original audio (`[orig]`, exact samples, silence for
//! a video without sound) and one input per voice that sounds inside the
//! chunk (`[v0]`, `[v1]`, ...). Each voice is levelled (peak at
//! [`VOICE_PEAK`]), cut where it began in an earlier chunk (`atrim`) and
//! placed at its line's time plus the voice delay (`adelay`, in samples).
//! The original is ducked while a voice plays: a `volume` envelope with
//! short ramps (fixed `--duck`), or `sidechaincompress` keyed by the voices
//! (`--duck auto`). Everything is summed without normalisation (`amix
//! normalize=0`) and kept below full scale by `alimiter`, so nothing clips.
//! Envelopes are computed on the absolute timeline, so a voice or a duck
//! that crosses a chunk boundary continues seamlessly in the next chunk.

use super::voices::PlacedVoice;
use crate::media::audio::SAMPLE_RATE;
use crate::media::pcm::{close, drain, feed, mix_graph, CHANNELS};
use crate::media::Result;

/// Peak level voices are brought to (about −3 dBFS), leaving headroom for
/// the ducked original.
pub const VOICE_PEAK: f32 = 0.7;

/// Length of the duck's fade in and out, in seconds.
const RAMP: f64 = 0.08;

/// Samples per frame fed to the graph for the original (10 ms): the duck
/// envelope is evaluated once per frame.
const ORIG_FRAME: usize = 480;

/// How the original audio makes room for the voice.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Duck {
    /// Scale the original to this gain while a voice plays.
    Fixed(f64),
    /// Side-chain compression keyed by the voice.
    Auto,
}

/// A voice placed on the chunk's own clock.
#[derive(Debug, Clone)]
pub struct ChunkVoice {
    /// First sample of the voice relative to the chunk's first sample (may
    /// be negative: it began in an earlier chunk).
    pub offset: i64,
    /// The voice.
    pub voice: PlacedVoice,
}

impl ChunkVoice {
    /// Samples the voice lasts.
    pub fn samples(&self) -> i64 {
        (self.voice.pcm.len() / CHANNELS) as i64
    }
}

/// Places voices on a chunk starting at timeline sample `chunk_start` and
/// `chunk_len` samples long; voices that do not sound inside are left out.
pub fn place(
    voices: &[PlacedVoice],
    chunk_start: i64,
    chunk_len: i64,
    delay: f64,
) -> Vec<ChunkVoice> {
    voices
        .iter()
        .filter_map(|v| {
            let start = ((v.at + delay) * f64::from(SAMPLE_RATE)).round() as i64;
            let placed = ChunkVoice {
                offset: start - chunk_start,
                voice: v.clone(),
            };
            let sounds = placed.offset < chunk_len && placed.offset + placed.samples() > 0;
            sounds.then_some(placed)
        })
        .collect()
}

/// The filter graph description for `voices` over an original of `total`
/// samples. Every voice branch is padded and cut to exactly `total`
/// samples: `amix` then ends with its inputs (`duration=longest`) and never
/// drops queued samples of the original, as it can with `duration=first`.
pub fn describe(voices: &[ChunkVoice], duck: Duck, total: usize) -> String {
    let mut parts = Vec::new();
    for (i, v) in voices.iter().enumerate() {
        let peak = v.voice.pcm.iter().fold(0f32, |m, s| m.max(s.abs()));
        let gain = if peak > 0.0 { VOICE_PEAK / peak } else { 1.0 };
        let position = if v.offset < 0 {
            format!("atrim=start_sample={},asetpts=N/SR/TB", -v.offset)
        } else {
            format!("adelay=delays={}S:all=1", v.offset)
        };
        parts.push(format!(
            "[v{i}]volume={gain:.6},{position},apad=whole_len={total},atrim=end_sample={total}[d{i}]"
        ));
    }
    let limiter = "alimiter=limit=0.95:level=0:latency=1";
    if voices.is_empty() {
        parts.push(format!("[orig]{limiter}"));
        return parts.join(";");
    }
    let labels: String = (0..voices.len()).map(|i| format!("[d{i}]")).collect();
    let n = voices.len() + 1;
    match duck {
        Duck::Fixed(gain) => {
            let spans: Vec<String> = voices
                .iter()
                .map(|v| {
                    let on = v.offset as f64 / f64::from(SAMPLE_RATE);
                    let off = (v.offset + v.samples()) as f64 / f64::from(SAMPLE_RATE);
                    format!(
                        "clip(min((t-({a:.6}))/{RAMP},({b:.6}-t)/{RAMP}),0,1)",
                        a = on - RAMP,
                        b = off + RAMP
                    )
                })
                .collect();
            let cover = spans
                .into_iter()
                .reduce(|a, b| format!("max({a},{b})"))
                .unwrap_or_else(|| "0".into());
            parts.push(format!(
                "[orig]volume=volume='1-{depth:.6}*{cover}':eval=frame[ducked]",
                depth = 1.0 - gain
            ));
            parts.push(format!(
                "[ducked]{labels}amix=inputs={n}:normalize=0:duration=longest:dropout_transition=0,{limiter}"
            ));
        }
        Duck::Auto => {
            parts.push(format!(
                "{labels}amix=inputs={}:normalize=0:duration=longest:dropout_transition=0,asplit=2[voice][key]",
                voices.len()
            ));
            // Both compressor inputs padded without end and the result cut
            // to length: the compressor must not stop before the original
            // is through.
            parts.push(format!(
                "[key]apad[keyp];[orig]apad[origp];[origp][keyp]sidechaincompress=threshold=0.02:ratio=6:attack=20:release=300:knee=2,atrim=end_sample={total}[ducked]"
            ));
            parts.push(format!(
                "[ducked][voice]amix=inputs=2:normalize=0:duration=longest:dropout_transition=0,{limiter}"
            ));
        }
    }
    parts.join(";")
}

/// Mixes `voices` over `orig` (which may run past `len` samples, so the
/// limiter sees what follows); returns exactly `len` samples.
pub fn mix(orig: &[f32], len: usize, voices: &[ChunkVoice], duck: Duck) -> Result<Vec<f32>> {
    let mut names = vec!["orig".to_string()];
    names.extend((0..voices.len()).map(|i| format!("v{i}")));
    let spec = describe(voices, duck, orig.len() / CHANNELS);
    let mut graph = mix_graph(&names, &spec)?;
    for (i, v) in voices.iter().enumerate() {
        let name = format!("v{i}");
        feed(&mut graph, &name, &v.voice.pcm, 4800, 0)?;
        close(&mut graph, &name)?;
    }
    // The original goes in a frame at a time with the output taken as it
    // comes, so no filter ever holds a backlog of it when it ends (amix
    // drops what it still queues of its first input at that input's end).
    let mut out = Vec::with_capacity(len * CHANNELS);
    for (i, piece) in orig.chunks(ORIG_FRAME * CHANNELS).enumerate() {
        feed(
            &mut graph,
            "orig",
            piece,
            ORIG_FRAME,
            (i * ORIG_FRAME) as i64,
        )?;
        out.extend(drain(&mut graph)?);
    }
    close(&mut graph, "orig")?;
    out.extend(drain(&mut graph)?);
    out.resize(len * CHANNELS, 0.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn voice(at: f64, seconds: f64) -> PlacedVoice {
        PlacedVoice {
            at,
            origin: "s.yaml:1".into(),
            pcm: Arc::new(vec![0.5; (seconds * 48_000.0) as usize * CHANNELS]),
        }
    }

    #[test]
    fn voices_are_placed_by_line_time_plus_delay() {
        let voices = [voice(1.0, 1.0), voice(5.0, 1.0), voice(9.5, 2.0)];
        // Chunk 4 s..10 s.
        let placed = place(&voices, 4 * 48_000, 6 * 48_000, 1.0);
        let offsets: Vec<i64> = placed.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, vec![2 * 48_000]);
        // Chunk 10 s..16 s: the voice at 9.5 s starts at 10.5 s.
        let placed = place(&voices, 10 * 48_000, 6 * 48_000, 1.0);
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].offset, 24_000);
        // A voice spilling over the boundary appears in both chunks.
        let spill = [voice(3.5, 2.0)];
        assert_eq!(
            place(&spill, 0, 5 * 48_000, 1.0)[0].offset,
            4 * 48_000 + 24_000
        );
        assert_eq!(
            place(&spill, 5 * 48_000, 5 * 48_000, 1.0)[0].offset,
            -24_000
        );
    }

    #[test]
    fn mix_keeps_every_sample() {
        let len = 48_000;
        // Two voices, one crossing the chunk's end.
        let two = place(&[voice(0.0, 0.3), voice(0.5, 2.0)], 0, len as i64, 0.2);
        let orig = vec![0.25f32; (len + 4800) * CHANNELS];
        // No voice, a short one, and one running past the chunk's end.
        for voices in [
            vec![],
            place(&[voice(0.0, 0.3)], 0, len as i64, 0.2),
            place(&[voice(0.5, 2.0)], 0, len as i64, 0.2),
            two,
        ] {
            for duck in [Duck::Fixed(0.2), Duck::Auto] {
                let out = mix(&orig, len, &voices, duck).expect("mix");
                let tail = &out[out.len() - 2 * 4800..];
                let silent = tail.iter().filter(|s| s.abs() < 1e-3).count();
                assert_eq!(silent, 0, "{duck:?}, {} voices: silent tail", voices.len());
            }
        }
    }

    #[test]
    fn mix_ducks_the_original_and_adds_the_voice() {
        let len = 48_000 * 2;
        let orig = vec![0.25f32; (len + 4800) * CHANNELS];
        let voices = place(&[voice(0.0, 0.5)], 0, len as i64, 1.0);
        let out = mix(&orig, len, &voices, Duck::Fixed(0.2)).expect("mix");
        assert_eq!(out.len(), len * CHANNELS);
        // Before the voice: untouched.
        assert!((out[2 * 24_000] - 0.25).abs() < 1e-3, "{}", out[2 * 24_000]);
        // During the voice: 0.25 * 0.2 + 0.7.
        let mid = 2 * (48_000 + 12_000);
        assert!(
            (out[mid] - (0.05 + VOICE_PEAK)).abs() < 2e-2,
            "{}",
            out[mid]
        );
        // After: back to 0.25.
        let after = 2 * (48_000 + 36_000);
        assert!((out[after] - 0.25).abs() < 1e-3, "{}", out[after]);
    }
}
