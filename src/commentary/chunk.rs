//! One chunk: the video of one interval with the commentary mixed in.
//!
//! Each chunk opens the input on its own, seeks to a keyframe before the
//! interval and decodes from there, keeping the frames whose index falls in
//! the interval (frame-exact boundaries on the constant-rate timeline) and
//! the original audio's exact sample range (plus a little of what follows,
//! for the limiter's look-ahead). Video is encoded with the same x264
//! settings for every chunk, the first frame an IDR; while that runs, the
//! voices are being synthesised, and the chunk waits for them only when it
//! comes to the mix. The mixed PCM is returned too: the final file encodes
//! the audio once from the chunks' PCM, so the joins are sample-exact.

use super::mix::{self, Duck};
use super::voices::PlacedVoice;
use super::{CommentaryError, Interval, Timeline};
use crate::media::filemux::FileMuxer;
use crate::media::pcm::{AacStream, PcmCollector, Placement, CHANNELS};
use crate::media::video::{open_h264, H264Settings, Scaler, VideoDecoder, VIDEO_TIME_BASE};
use crate::media::{self, ff, MediaError};
use crate::CancelFlag;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Samples of original audio decoded past the chunk's end, so the limiter
/// looks ahead into the real continuation.
const LOOKAHEAD_SAMPLES: i64 = 4800;

/// What every chunk of one input shares.
#[derive(Debug, Clone)]
pub struct Source {
    /// What libav opens.
    pub open: String,
    /// Index of the video stream.
    pub video_index: usize,
    /// Index of the audio stream, if the input has sound.
    pub audio_index: Option<usize>,
    /// Display rotation to apply.
    pub rotation: u32,
    /// The constant-rate timeline chunks are cut on.
    pub timeline: Timeline,
    /// x264 settings (threads are set per chunk).
    pub h264: H264Settings,
    /// AAC bitrate.
    pub audio_bitrate: u64,
    /// Voice delay after the line's time, seconds.
    pub voice_delay: f64,
    /// How the original makes room for the voice.
    pub duck: Duck,
}

/// A finished chunk, ready to publish.
#[derive(Debug)]
pub struct BuiltChunk {
    /// One past the last frame of the chunk.
    pub end: u64,
    /// The progressive MP4.
    pub mp4: Vec<u8>,
    /// The mixed audio, exactly the chunk's samples.
    pub pcm: Vec<f32>,
    /// Problems that did not stop the chunk (a mix that failed, overlaps).
    pub warnings: Vec<String>,
}

/// Encoded streams of a chunk, timestamps from the chunk's start.
struct Encoded {
    video: Vec<ff::Packet>,
    video_encoder: ff::encoder::video::Encoder,
    audio: Vec<ff::Packet>,
    audio_encoder: ff::encoder::audio::Encoder,
}

/// Builds chunk `iv`. `voices(end)` blocks until every voice of a line
/// before `end` seconds is resolved (`None`: cancelled).
pub fn build(
    src: &Source,
    iv: &Interval,
    threads: usize,
    scratch: &Path,
    voices: &dyn Fn(f64) -> Option<Vec<PlacedVoice>>,
    cancel: &CancelFlag,
) -> Result<BuiltChunk, CommentaryError> {
    let media = |e: MediaError| CommentaryError::Media(format!("chunk {}: {e}", iv.index), e);
    let (video, encoder, end, orig) = decode_and_encode(src, iv, threads, cancel)?;
    let tl = &src.timeline;
    let start_sample = tl.sample_of(iv.first);
    let len = (tl.sample_of(end) - start_sample) as usize;
    let placed = voices(tl.secs_of(end)).ok_or(CommentaryError::Interrupted)?;
    let mut warnings = overlaps(&placed, tl.secs_of(iv.first), src.voice_delay);
    let on_chunk = mix::place(&placed, start_sample, len as i64, src.voice_delay);
    let pcm = match mix::mix(&orig, len, &on_chunk, src.duck) {
        Ok(pcm) => pcm,
        Err(e) if !on_chunk.is_empty() => {
            warnings.push(format!(
                "chunk {}: the voice could not be mixed ({e}); the chunk has the original audio only",
                iv.index
            ));
            mix::mix(&orig, len, &[], src.duck).map_err(media)?
        }
        Err(e) => return Err(media(e)),
    };
    let mut aac = AacStream::new(src.audio_bitrate, true).map_err(media)?;
    let mut audio = Vec::new();
    aac.push(&pcm, &mut |p| {
        audio.push(p);
        Ok(())
    })
    .map_err(media)?;
    let audio_encoder = aac
        .finish(&mut |p| {
            audio.push(p);
            Ok(())
        })
        .map_err(media)?;
    let enc = Encoded {
        video,
        video_encoder: encoder,
        audio,
        audio_encoder,
    };
    let mp4_path = scratch.join(format!("chunk_{:04}.mp4", iv.index));
    write_mp4(&enc, tl.ticks_of(1), &mp4_path).map_err(media)?;
    let mp4 = read_and_remove(&mp4_path)?;
    Ok(BuiltChunk {
        end,
        mp4,
        pcm,
        warnings,
    })
}

/// Decodes the interval and encodes its video; returns the packets, the
/// encoder, the end frame and the original audio (with look-ahead).
fn decode_and_encode(
    src: &Source,
    iv: &Interval,
    threads: usize,
    cancel: &CancelFlag,
) -> Result<(Vec<ff::Packet>, ff::encoder::video::Encoder, u64, Vec<f32>), CommentaryError> {
    let tl = &src.timeline;
    let mut reader = IntervalReader::open(src, iv)?;
    let mut video = VideoChunk::new(src, iv, threads)?;
    reader.read(src, &mut video, cancel)?;
    let Some(next) = video.next else {
        return Err(CommentaryError::Input(format!(
            "chunk {}: no video frames from {:.3}s on",
            iv.index,
            tl.secs_of(iv.first)
        )));
    };
    // A chunk that reached its end frame ends there; one that met the end
    // of the input ends after its last frame.
    let end = if video.done {
        iv.end.unwrap_or(next)
    } else {
        next
    };
    video.encoder.send_eof().map_err(|source| {
        let e = MediaError::Av {
            what: "flushing H.264".into(),
            source,
        };
        CommentaryError::Media(format!("chunk {}: {e}", iv.index), e)
    })?;
    drain_encoder(&mut video.encoder, &mut video.packets);
    let len = (tl.sample_of(end) - reader.start_sample) as usize;
    let orig = reader.original_audio(iv, len)?;
    Ok((video.packets, video.encoder, end, orig))
}

/// The input opened at a chunk's interval: its video decoder and the
/// collector of the original audio's samples.
struct IntervalReader {
    ictx: ff::format::context::Input,
    decoder: VideoDecoder,
    audio: Option<PcmCollector>,
    /// The interval's first sample.
    start_sample: i64,
}

impl IntervalReader {
    /// Opens the input and seeks to a keyframe before interval `iv`.
    fn open(src: &Source, iv: &Interval) -> Result<Self, CommentaryError> {
        let tl = &src.timeline;
        let input = |e: MediaError| CommentaryError::Input(format!("chunk {}: {e}", iv.index));
        let mut ictx = media::open_input(&src.open).map_err(input)?;
        if iv.first > 0 {
            // A keyframe before the interval, with margin so the audio
            // decoder is primed before the first sample we keep.
            let target = ((tl.start_time + tl.secs_of(iv.first) - 1.0).max(0.0)
                * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
            ictx.seek(target, ..target).map_err(|e| {
                CommentaryError::Input(format!(
                    "chunk {}: cannot seek to {:.1}s: {e}",
                    iv.index,
                    tl.secs_of(iv.first)
                ))
            })?;
        }
        let stream = ictx
            .stream(src.video_index)
            .ok_or_else(|| CommentaryError::Internal("the video stream vanished".into()))?;
        let anchor = (iv.first == 0).then_some(tl.start_time);
        let decoder = VideoDecoder::new(&stream, src.rotation, tl.fps(), anchor).map_err(input)?;
        let start_sample = tl.sample_of(iv.first);
        let end_sample = match iv.end {
            Some(end) => tl.sample_of(end) + LOOKAHEAD_SAMPLES,
            // The last chunk runs to the end of the input; its exact length
            // is known once the video ends.
            None => tl.sample_of(iv.first + tl.frames_in(86_400.0)),
        };
        let placement = Placement::Window {
            origin: tl.start_time,
            start: start_sample,
            end: end_sample,
        };
        let audio = match src.audio_index.and_then(|i| ictx.stream(i)) {
            Some(s) => Some(PcmCollector::new(&s, placement).map_err(input)?),
            None => None,
        };
        Ok(IntervalReader {
            ictx,
            decoder,
            audio,
            start_sample,
        })
    }

    /// Reads packets until the interval's video and audio are complete or
    /// the input ends, decoding video into `video`.
    fn read(
        &mut self,
        src: &Source,
        video: &mut VideoChunk,
        cancel: &CancelFlag,
    ) -> Result<(), CommentaryError> {
        let index = video.interval.index;
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Err(CommentaryError::Interrupted);
            }
            let audio_done = self.audio.as_ref().is_none_or(PcmCollector::complete);
            if video.done && audio_done {
                return Ok(());
            }
            let mut packet = ff::Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    if !video.done {
                        self.decoder.finish(&mut |f| video.offer(f))?;
                    }
                    return Ok(());
                }
                Err(e) => {
                    return Err(CommentaryError::Input(format!(
                        "chunk {index}: read error: {e} (the file may be truncated or damaged)"
                    )))
                }
            }
            if packet.stream() == src.video_index {
                if !video.done {
                    self.decoder.push(&packet, &mut |f| video.offer(f))?;
                }
            } else if Some(packet.stream()) == src.audio_index {
                if let Some(a) = self.audio.as_mut().filter(|a| !a.complete()) {
                    a.push(&packet)
                        .map_err(|e| CommentaryError::Input(format!("chunk {index}: {e}")))?;
                }
            }
        }
    }

    /// The original audio of the chunk's `len` samples and the look-ahead
    /// after them (silence where the input has none).
    fn original_audio(self, iv: &Interval, len: usize) -> Result<Vec<f32>, CommentaryError> {
        let wanted = len + LOOKAHEAD_SAMPLES as usize;
        let mut orig = match self.audio {
            Some(a) => a
                .finish()
                .map_err(|e| CommentaryError::Input(format!("chunk {}: {e}", iv.index)))?,
            None => Vec::new(),
        };
        orig.resize(wanted * CHANNELS, 0.0);
        if iv.end.is_none() {
            // Past the end of the input there is only silence to look ahead
            // to.
            for s in &mut orig[len * CHANNELS..] {
                *s = 0.0;
            }
        }
        Ok(orig)
    }
}

/// The video side of a chunk: frames of the interval in, H.264 out.
struct VideoChunk {
    encoder: ff::encoder::video::Encoder,
    scaler: Scaler,
    packets: Vec<ff::Packet>,
    /// One past the last frame encoded.
    next: Option<u64>,
    /// The interval's end frame has been reached.
    done: bool,
    interval: Interval,
    timeline: Timeline,
}

impl VideoChunk {
    /// Opens chunk `iv`'s encoder with `threads` x264 threads.
    fn new(src: &Source, iv: &Interval, threads: usize) -> Result<Self, CommentaryError> {
        let mut h264 = src.h264.clone();
        h264.threads = threads;
        let encoder = open_h264(&h264)
            .map_err(|e| CommentaryError::Media(format!("chunk {}: {e}", iv.index), e))?;
        Ok(VideoChunk {
            encoder,
            scaler: Scaler::new(h264.width, h264.height),
            packets: Vec::new(),
            next: None,
            done: false,
            interval: *iv,
            timeline: src.timeline,
        })
    }

    fn offer(&mut self, frame: ff::frame::Video) -> Result<(), CommentaryError> {
        let iv = &self.interval;
        let Some(pts) = frame.pts() else {
            return Ok(());
        };
        let index = pts - self.timeline.origin_frames;
        if index < iv.first as i64 {
            return Ok(());
        }
        let index = index as u64;
        if iv.end.is_some_and(|end| index >= end) {
            self.done = true;
            return Ok(());
        }
        let mut scaled = self.scaler.scale(frame)?;
        scaled.set_pts(Some(self.timeline.ticks_of(index - iv.first)));
        // The first frame of every chunk is an IDR (x264 forced-idr).
        scaled.set_kind(if self.next.is_none() {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        });
        self.next = Some(index + 1);
        self.encoder
            .send_frame(&scaled)
            .map_err(|source| MediaError::Av {
                what: "encoding H.264".into(),
                source,
            })?;
        drain_encoder(&mut self.encoder, &mut self.packets);
        Ok(())
    }
}

fn drain_encoder(encoder: &mut ff::encoder::video::Encoder, out: &mut Vec<ff::Packet>) {
    let mut packet = ff::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        out.push(std::mem::replace(&mut packet, ff::Packet::empty()));
    }
}

/// Muxes the chunk's streams into a progressive MP4 at `path`.
fn write_mp4(enc: &Encoded, frame_ticks: i64, path: &Path) -> crate::media::Result<()> {
    let mut mux = FileMuxer::create(path, "mp4")?;
    let v = mux.add_encoder(&enc.video_encoder, VIDEO_TIME_BASE)?;
    let a = mux.add_encoder(
        &enc.audio_encoder,
        ff::Rational(1, crate::media::audio::SAMPLE_RATE),
    )?;
    mux.start(&[("movflags", "+faststart")])?;
    for p in &enc.video {
        let mut p = p.clone();
        p.set_duration(frame_ticks);
        mux.write(v, p)?;
    }
    for p in &enc.audio {
        mux.write(a, p.clone())?;
    }
    mux.finish()
}

/// Reads a finished temp file into memory and removes it.
pub(super) fn read_and_remove(path: &Path) -> Result<Vec<u8>, CommentaryError> {
    let bytes = std::fs::read(path).map_err(|source| CommentaryError::Write {
        path: path.display().to_string(),
        source,
    })?;
    let _ = std::fs::remove_file(path);
    Ok(bytes)
}

/// Warnings for voices that start while an earlier one still plays, for
/// lines at or after `from` seconds (each pair is reported by the chunk
/// holding the later line).
fn overlaps(voices: &[PlacedVoice], from: f64, delay: f64) -> Vec<String> {
    let mut out = Vec::new();
    for pair in voices.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let a_end = a.at
            + delay
            + (a.pcm.len() / CHANNELS) as f64 / f64::from(crate::media::audio::SAMPLE_RATE);
        if b.at >= from && b.at + delay < a_end {
            out.push(format!(
                "{}: this line's voice starts while the voice of {} still plays (until {}); both are mixed",
                b.origin,
                a.origin,
                super::script::format_time(a_end)
            ));
        }
    }
    out
}
