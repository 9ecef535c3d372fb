//! `--auto`: events found in the video itself, in one decode pass, no
//! network.
//!
//! - **Scene cuts**: each frame is shrunk to a 64x36 luma thumbnail; the
//!   mean absolute difference to the previous one is the cut score. A cut
//!   is a score well above both a floor and the recent average (so steady
//!   motion or a slow pan does not count).
//! - **Loud moments**: RMS in 100 ms windows, averaged over 400 ms (a
//!   momentary level); a peak is an excursion at least 10 dB above the
//!   running background level (and above −30 dBFS), reported at its
//!   loudest point.
//! - **Silence**: 100 ms windows below −50 dBFS for at least a second.
//!
//! The pass walks the video in order and hands over each interval's events
//! as soon as the pass is safely past its end, so commentary for the first
//! chunk can be worded and spoken while the rest is still being analysed.

use super::{CommentaryError, Interval, Timeline};
use crate::media::pcm::{PcmCollector, Placement, CHANNELS};
use crate::media::video::{Scaler, VideoDecoder};
use crate::media::{self, ff, MediaError};
use crate::CancelFlag;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// What kind of moment an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The picture changes abruptly.
    SceneCut,
    /// The sound gets much louder than around it.
    Loud,
    /// The sound stops for a while.
    Silence,
}

/// One detected moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectedEvent {
    /// What happened.
    pub kind: EventKind,
    /// When, in seconds from the start of the video.
    pub at: f64,
    /// For silence: when it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// How strong the moment is, 0 to 1 (used to pick the lines).
    pub strength: f64,
    /// Scene cuts: mean luma difference (0–1). Loud moments: level in dBFS.
    /// Silence: level in dBFS.
    pub value: f64,
}

/// Seconds the pass must be past an interval's end before that interval's
/// events are final (a loud moment or silence may still be going on).
const SETTLE: f64 = 2.0;

const THUMB_W: u32 = 64;
const THUMB_H: u32 = 36;
const WINDOW: usize = 4800;
const SILENCE_DB: f64 = -50.0;
const SILENCE_MIN: f64 = 1.0;

/// Frame-difference scene-cut meter.
#[derive(Debug, Default)]
struct SceneMeter {
    previous: Option<Vec<u8>>,
    recent: VecDeque<f64>,
    last_cut: Option<f64>,
}

impl SceneMeter {
    fn push(&mut self, at: f64, luma: Vec<u8>) -> Option<DetectedEvent> {
        let previous = self.previous.replace(luma);
        let (prev, cur) = (previous?, self.previous.as_ref()?);
        let sum: u64 = prev
            .iter()
            .zip(cur)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let score = sum as f64 / (cur.len().max(1) as f64 * 255.0);
        let average = if self.recent.is_empty() {
            0.0
        } else {
            self.recent.iter().sum::<f64>() / self.recent.len() as f64
        };
        self.recent.push_back(score);
        if self.recent.len() > 25 {
            self.recent.pop_front();
        }
        let spaced = self.last_cut.is_none_or(|t| at - t >= 0.5);
        if score >= 0.08 && score > 3.0 * average + 0.03 && spaced {
            self.last_cut = Some(at);
            return Some(DetectedEvent {
                kind: EventKind::SceneCut,
                at,
                end: None,
                strength: (score / 0.4).min(1.0),
                value: round3(score),
            });
        }
        None
    }
}

/// RMS loudness meter: loud peaks and silences.
#[derive(Debug)]
struct LevelMeter {
    /// Samples of the window being filled: (sum of squares, count).
    acc: (f64, usize),
    /// Timeline sample where the next window starts.
    next_window: i64,
    /// Mean squares of the last four windows.
    momentary: VecDeque<f64>,
    background: Option<f64>,
    peak: Option<(f64, f64)>,
    silence_from: Option<f64>,
    last_silence_db: f64,
}

impl LevelMeter {
    fn new() -> Self {
        LevelMeter {
            acc: (0.0, 0),
            next_window: 0,
            momentary: VecDeque::new(),
            background: None,
            peak: None,
            silence_from: None,
            last_silence_db: -120.0,
        }
    }

    fn push(&mut self, pos: i64, pcm: &[f32], out: &mut Vec<DetectedEvent>) {
        if self.acc.1 == 0 && self.momentary.is_empty() && self.next_window == 0 {
            self.next_window = pos;
        }
        for frame in pcm.chunks_exact(CHANNELS) {
            let mono = frame.iter().map(|s| f64::from(*s)).sum::<f64>() / CHANNELS as f64;
            self.acc.0 += mono * mono;
            self.acc.1 += 1;
            if self.acc.1 == WINDOW {
                let start = self.next_window;
                self.next_window += WINDOW as i64;
                let ms = self.acc.0 / WINDOW as f64;
                self.acc = (0.0, 0);
                self.window(start as f64 / 48_000.0, ms, out);
            }
        }
    }

    fn window(&mut self, at: f64, ms: f64, out: &mut Vec<DetectedEvent>) {
        let db = to_db(ms);
        let end = at + WINDOW as f64 / 48_000.0;
        if db < SILENCE_DB {
            self.silence_from.get_or_insert(at);
            self.last_silence_db = db;
        } else {
            self.end_silence(at, out);
        }
        self.momentary.push_back(ms);
        if self.momentary.len() > 4 {
            self.momentary.pop_front();
        }
        let level = to_db(self.momentary.iter().sum::<f64>() / self.momentary.len() as f64);
        let background = *self.background.get_or_insert(level);
        let threshold = (background + 10.0).max(-30.0);
        if level >= threshold {
            let centre = end - 0.2;
            match &mut self.peak {
                Some((t, l)) if level > *l => {
                    *t = centre;
                    *l = level;
                }
                Some(_) => {}
                None => self.peak = Some((centre, level)),
            }
        } else {
            if level < threshold - 3.0 {
                self.end_peak(background, out);
            }
            // The background follows slowly (about 10 s) outside peaks
            // and silences (a pause must not make the next sound "loud").
            if db >= SILENCE_DB {
                self.background = Some(background + (level - background) * 0.01);
            }
        }
    }

    fn end_peak(&mut self, background: f64, out: &mut Vec<DetectedEvent>) {
        if let Some((at, level)) = self.peak.take() {
            out.push(DetectedEvent {
                kind: EventKind::Loud,
                at: round3(at.max(0.0)),
                end: None,
                strength: ((level - background) / 30.0).clamp(0.0, 1.0),
                value: round3(level),
            });
        }
    }

    fn end_silence(&mut self, at: f64, out: &mut Vec<DetectedEvent>) {
        if let Some(from) = self.silence_from.take() {
            if at - from >= SILENCE_MIN {
                out.push(DetectedEvent {
                    kind: EventKind::Silence,
                    at: round3(from),
                    end: Some(round3(at)),
                    strength: ((at - from) / 10.0).min(1.0),
                    value: round3(self.last_silence_db.max(-120.0)),
                });
            }
        }
    }

    fn finish(&mut self, at: f64, out: &mut Vec<DetectedEvent>) {
        let background = self.background.unwrap_or(-120.0);
        self.end_peak(background, out);
        self.end_silence(at, out);
    }
}

fn to_db(mean_square: f64) -> f64 {
    if mean_square <= 1e-12 {
        -120.0
    } else {
        10.0 * mean_square.log10()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where the pass reads from.
#[derive(Debug, Clone)]
pub struct EventSource {
    /// What libav opens.
    pub open: String,
    /// Video stream index.
    pub video_index: usize,
    /// Audio stream index, if any.
    pub audio_index: Option<usize>,
    /// Display rotation.
    pub rotation: u32,
    /// The timeline.
    pub timeline: Timeline,
}

/// Runs the pass. `on_interval(i, events)` is called once per interval, in
/// order, as soon as its events are final.
pub fn detect(
    src: &EventSource,
    intervals: &[Interval],
    cancel: &CancelFlag,
    on_interval: &mut dyn FnMut(usize, Vec<DetectedEvent>),
) -> Result<(), CommentaryError> {
    let input = |e: MediaError| CommentaryError::Input(format!("event detection: {e}"));
    let tl = &src.timeline;
    let (mut ictx, mut decoder, mut audio) = open_source(src)?;
    let mut scenes = SceneMeter::default();
    let mut levels = LevelMeter::new();
    let mut found: Vec<DetectedEvent> = Vec::new();
    let mut scaler = Scaler::new(THUMB_W, THUMB_H);
    let mut video_at = 0.0f64;
    let mut audio_at = if audio.is_some() { 0.0 } else { f64::INFINITY };
    let mut next_interval = 0usize;
    let mut publish = |upto: f64, found: &mut Vec<DetectedEvent>, next: &mut usize| {
        publish_settled(intervals, tl, upto, found, next, on_interval);
    };
    let mut frames: Vec<ff::frame::Video> = Vec::new();
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(CommentaryError::Interrupted);
        }
        let mut packet = ff::Packet::empty();
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                return Err(CommentaryError::Input(format!(
                    "event detection: read error: {e}"
                )))
            }
        }
        if packet.stream() == src.video_index {
            decoder.push(&packet, &mut |f| -> Result<(), CommentaryError> {
                frames.push(f);
                Ok(())
            })?;
            for frame in frames.drain(..) {
                video_at = scan(&mut scaler, &mut scenes, tl, frame, &mut found).map_err(input)?;
            }
        } else if Some(packet.stream()) == src.audio_index {
            if let Some(a) = audio.as_mut() {
                a.push(&packet).map_err(input)?;
                let (pos, pcm) = a.take();
                levels.push(pos, &pcm, &mut found);
                audio_at = (pos + (pcm.len() / CHANNELS) as i64) as f64 / 48_000.0;
            }
        }
        let upto = video_at.min(audio_at);
        found.sort_by(|a, b| a.at.total_cmp(&b.at));
        publish(upto, &mut found, &mut next_interval);
    }
    decoder.finish(&mut |f| -> Result<(), CommentaryError> {
        frames.push(f);
        Ok(())
    })?;
    for frame in frames.drain(..) {
        video_at = scan(&mut scaler, &mut scenes, tl, frame, &mut found).map_err(input)?;
    }
    if let Some(a) = audio.as_mut() {
        a.flush().map_err(input)?;
        let (pos, pcm) = a.take();
        levels.push(pos, &pcm, &mut found);
    }
    levels.finish(video_at.max(audio_at.min(video_at)), &mut found);
    found.sort_by(|a, b| a.at.total_cmp(&b.at));
    publish(f64::INFINITY, &mut found, &mut next_interval);
    Ok(())
}

/// Opens the input for the pass: its video decoder and, when it has sound,
/// the collector of its audio.
fn open_source(
    src: &EventSource,
) -> Result<
    (
        ff::format::context::Input,
        VideoDecoder,
        Option<PcmCollector>,
    ),
    CommentaryError,
> {
    let input = |e: MediaError| CommentaryError::Input(format!("event detection: {e}"));
    let tl = &src.timeline;
    let ictx = media::open_input(&src.open).map_err(input)?;
    let stream = ictx
        .stream(src.video_index)
        .ok_or_else(|| CommentaryError::Internal("the video stream vanished".into()))?;
    let decoder =
        VideoDecoder::new(&stream, src.rotation, tl.fps(), Some(tl.start_time)).map_err(input)?;
    let placement = Placement::Stream {
        origin: tl.start_time,
    };
    let audio = match src.audio_index.and_then(|i| ictx.stream(i)) {
        Some(s) => Some(PcmCollector::new(&s, placement).map_err(input)?),
        None => None,
    };
    Ok((ictx, decoder, audio))
}

/// Hands the events of every interval from `*next` on that has settled by
/// `upto` seconds (both passes are past its end) to `on_interval`, taking
/// them out of `found` (sorted by time).
fn publish_settled(
    intervals: &[Interval],
    tl: &Timeline,
    upto: f64,
    found: &mut Vec<DetectedEvent>,
    next: &mut usize,
    on_interval: &mut dyn FnMut(usize, Vec<DetectedEvent>),
) {
    while *next < intervals.len() {
        let iv = &intervals[*next];
        let end = iv.end.map_or(f64::INFINITY, |e| tl.secs_of(e));
        if end + SETTLE > upto {
            break;
        }
        let (mine, rest): (Vec<_>, Vec<_>) = found.drain(..).partition(|e| e.at < end);
        *found = rest;
        on_interval(*next, mine);
        *next += 1;
    }
}

/// Feeds one frame to the scene meter; returns its time.
fn scan(
    scaler: &mut Scaler,
    scenes: &mut SceneMeter,
    tl: &Timeline,
    frame: ff::frame::Video,
    found: &mut Vec<DetectedEvent>,
) -> Result<f64, MediaError> {
    let at = tl.secs_of((frame.pts().unwrap_or(0) - tl.origin_frames).max(0) as u64);
    let small = scaler.scale(frame)?;
    let stride = small.stride(0);
    let data = small.data(0);
    let width = THUMB_W as usize;
    let mut luma = Vec::with_capacity(width * THUMB_H as usize);
    for row in 0..THUMB_H as usize {
        luma.extend_from_slice(&data[row * stride..row * stride + width]);
    }
    if let Some(e) = scenes.push(at, luma) {
        found.push(e);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_stands_out_from_motion() {
        let mut m = SceneMeter::default();
        let mut cuts = Vec::new();
        for i in 0..50u32 {
            // Slow drift, then an abrupt change at frame 30.
            let base = if i < 30 { 40 + i as u8 } else { 200 };
            if let Some(e) = m.push(f64::from(i) / 25.0, vec![base; 64]) {
                cuts.push(e.at);
            }
        }
        assert_eq!(cuts, vec![30.0 / 25.0]);
    }

    #[test]
    fn loud_burst_and_silence_are_found() {
        let mut meter = LevelMeter::new();
        let mut out = Vec::new();
        let tone = |amp: f32, secs: f64| -> Vec<f32> {
            (0..(secs * 48_000.0) as usize)
                .flat_map(|i| {
                    let s = amp * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin();
                    [s, s]
                })
                .collect()
        };
        let mut pcm = tone(0.05, 4.0);
        pcm.extend(tone(0.9, 0.5));
        pcm.extend(tone(0.05, 2.0));
        pcm.extend(tone(0.0, 2.0));
        pcm.extend(tone(0.05, 1.0));
        meter.push(0, &pcm, &mut out);
        meter.finish(9.5, &mut out);
        let loud: Vec<f64> = out
            .iter()
            .filter(|e| e.kind == EventKind::Loud)
            .map(|e| e.at)
            .collect();
        assert_eq!(loud.len(), 1, "{out:?}");
        assert!((4.0..4.6).contains(&loud[0]), "{loud:?}");
        let silence: Vec<&DetectedEvent> = out
            .iter()
            .filter(|e| e.kind == EventKind::Silence)
            .collect();
        assert_eq!(silence.len(), 1, "{out:?}");
        assert!((silence[0].at - 6.5).abs() < 0.15, "{silence:?}");
    }
}
