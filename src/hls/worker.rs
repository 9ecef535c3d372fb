//! Rendition workers: one per video rendition plus one for audio.
//!
//! The demux thread sends every worker the same stream of [`Msg`]s. A video
//! worker scales and encodes frames, forcing an IDR frame on each segment's
//! first frame; the audio worker decodes and encodes packets. Both cut their
//! muxer's output at segment boundaries given by the shared
//! [`SegmentClock`], store the segment, record it in the checkpoint and
//! announce it. A worker whose channel closes without [`Msg::End`] was
//! aborted: it drops its unfinished segment and keeps the checkpoint.

use super::checkpoint::CheckpointFile;
use super::clock::SegmentClock;
use super::playlist::{iframe_playlist, media_playlist, Bandwidth, SegmentInfo};
use super::HlsError;
use crate::media::mux::{SegmentFormat, SegmentMuxer, OUTPUT_ORIGIN_SECS};
use crate::media::video::{open_h264, H264Settings, Scaler, VIDEO_TIME_BASE};
use crate::media::{audio::AudioTranscoder, codecs, ff, MediaError};
use crate::progress::{Event, Reporter, Throttle};
use crate::storage::Destination;
use std::sync::mpsc::Receiver;

/// What the demux thread sends a worker.
pub enum Msg<T> {
    /// A frame (video workers) or packet (audio worker).
    Item(T),
    /// The input ended normally: finish the last segment.
    End,
}

/// What every worker of one input shares.
pub struct Shared<'a> {
    /// Input name for events.
    pub input: &'a str,
    /// Where segments and playlists go.
    pub dest: &'a dyn Destination,
    /// Key prefix of this input's output (`<stem>/`).
    pub prefix: &'a str,
    /// Segment boundaries.
    pub clock: SegmentClock,
    /// Segment container.
    pub format: SegmentFormat,
    /// Checkpoint to record segments in.
    pub checkpoint: &'a CheckpointFile<'a>,
    /// Event sink.
    pub reporter: &'a dyn Reporter,
    /// Expected number of output frames, for progress.
    pub total_frames: u64,
    /// Segment index this run starts at (resume).
    pub first_segment: u32,
}

/// How a worker ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Finish {
    /// Every segment and the playlists are written.
    Complete,
    /// Stopped early (interrupt or another worker's failure).
    Aborted,
}

/// Segments being cut from one muxer.
struct Segmenter<'a> {
    shared: &'a Shared<'a>,
    rendition: String,
    muxer: SegmentMuxer,
    index: u32,
    /// IDR frame byte range within the open segment.
    iframe: Option<(u64, u64)>,
    open: bool,
}

impl<'a> Segmenter<'a> {
    fn new(
        shared: &'a Shared<'a>,
        rendition: &str,
        muxer: SegmentMuxer,
        init: Option<Vec<u8>>,
    ) -> Result<Self, HlsError> {
        if let (Some(init), Some(name)) = (init, shared.format.init_segment()) {
            put(shared, &format!("{rendition}/{name}"), &init)?;
        }
        Ok(Segmenter {
            shared,
            rendition: rendition.to_string(),
            muxer,
            index: shared.first_segment,
            iframe: None,
            open: false,
        })
    }

    /// Closes the open segment (if any) with the given duration.
    fn cut(&mut self, duration: f64, keyframe_size: Option<u64>) -> Result<(), HlsError> {
        if !self.open {
            return Ok(());
        }
        let bytes = self.muxer.cut().map_err(|e| self.media_error(e))?;
        let iframe = match self.shared.format {
            SegmentFormat::Ts => self.iframe,
            SegmentFormat::Fmp4 => keyframe_size
                .and_then(|k| fmp4_first_sample_end(&bytes, k))
                .map(|end| (0, end)),
        };
        let uri = format!("seg_{:05}.{}", self.index, self.shared.format.extension());
        let held = self.shared.checkpoint.segment(&self.rendition, self.index);
        if held.is_some_and(|held| held.uri == uri) {
            // An earlier run stored this segment (the rendition was ahead
            // of the others when it stopped): it stays as it is.
            self.index += 1;
            self.iframe = None;
            self.open = false;
            return Ok(());
        }
        put(self.shared, &format!("{}/{uri}", self.rendition), &bytes)?;
        let info = SegmentInfo {
            uri,
            duration,
            bytes: bytes.len() as u64,
            iframe,
        };
        let name = self.rendition.clone();
        let index = self.index;
        self.shared
            .checkpoint
            .update(|c| {
                let state = c.renditions.entry(name).or_default();
                state.segments.truncate(index as usize);
                state.segments.push(info.clone());
            })
            .map_err(HlsError::Checkpoint)?;
        tracing::debug!(
            "{} {}: segment {index} cut, {duration:.3} s, {} bytes",
            self.shared.input,
            self.rendition,
            info.bytes
        );
        self.shared.reporter.report(Event::SegmentWritten {
            input: self.shared.input.to_string(),
            rendition: self.rendition.clone(),
            index,
            duration,
            bytes: info.bytes,
        });
        self.index += 1;
        self.iframe = None;
        self.open = false;
        Ok(())
    }

    fn write(&mut self, packet: &mut ff::Packet, keyframe: bool) -> Result<(), HlsError> {
        self.open = true;
        self.muxer.write(packet).map_err(|e| self.media_error(e))?;
        if keyframe && self.iframe.is_none() && self.shared.format == SegmentFormat::Ts {
            self.iframe = Some((0, self.muxer.segment_position()));
        }
        Ok(())
    }

    /// Writes both playlists and marks the rendition done.
    fn complete(self, codec: Option<String>) -> Result<(), HlsError> {
        let _ = self.muxer.finish();
        let name = self.rendition.clone();
        let segments = self
            .shared
            .checkpoint
            .snapshot()
            .renditions
            .get(&name)
            .map(|r| r.segments.clone())
            .unwrap_or_default();
        let format = self.shared.format;
        put(
            self.shared,
            &format!("{name}/index.m3u8"),
            media_playlist(format, &segments).as_bytes(),
        )?;
        if segments.iter().any(|s| s.iframe.is_some()) {
            put(
                self.shared,
                &format!("{name}/iframes.m3u8"),
                iframe_playlist(format, &segments).as_bytes(),
            )?;
        }
        self.shared
            .checkpoint
            .update(|c| {
                let state = c.renditions.entry(name.clone()).or_default();
                state.done = true;
                state.codec = codec;
            })
            .map_err(HlsError::Checkpoint)?;
        let bw = Bandwidth::measure(&segments, &[], |s| s.bytes);
        self.shared.reporter.report(Event::RenditionDone {
            input: self.shared.input.to_string(),
            rendition: name,
            segments: segments.len() as u32,
            average_bandwidth: bw.average,
            peak_bandwidth: bw.peak,
        });
        Ok(())
    }

    fn media_error(&self, e: MediaError) -> HlsError {
        HlsError::Media(format!("{}: {e}", self.rendition), e)
    }
}

fn put(shared: &Shared<'_>, key: &str, bytes: &[u8]) -> Result<(), HlsError> {
    let full = format!("{}{key}", shared.prefix);
    shared
        .dest
        .put(&full, bytes)
        .map_err(|source| HlsError::Write {
            path: shared.dest.describe(&full),
            source,
        })
}

/// End of the first sample of an fMP4 fragment (`moof` + `mdat` header +
/// the IDR frame), i.e. the I-frame byte range length.
fn fmp4_first_sample_end(segment: &[u8], keyframe_size: u64) -> Option<u64> {
    let size = u32::from_be_bytes(segment.get(0..4)?.try_into().ok()?) as u64;
    (segment.get(4..8)? == b"moof").then_some(size + 8 + keyframe_size)
}

/// Reports a rendition's progress in half-percent steps: smooth bars, not
/// an event per frame.
struct ProgressTicker {
    throttle: Throttle,
}

impl ProgressTicker {
    const STEP: f64 = 0.5;

    fn new() -> Self {
        ProgressTicker {
            throttle: Throttle::new(Self::STEP),
        }
    }

    fn tick(&self, shared: &Shared<'_>, rendition: &str, done: u64) {
        let percent = (done as f64 * 100.0 / shared.total_frames.max(1) as f64).min(100.0);
        let percent = (percent * 10.0).round() / 10.0;
        if self.throttle.passes(shared.input, rendition, percent) {
            shared.reporter.report(Event::Progress {
                input: shared.input.to_string(),
                rendition: rendition.to_string(),
                percent,
            });
        }
    }
}

/// One video rendition's scale + encode + segment loop.
pub struct VideoJob {
    /// Rendition name (`720p`).
    pub name: String,
    /// Encoder settings.
    pub h264: H264Settings,
    /// Output frame index of the first frame in frame timestamps (frames
    /// carry `index + origin`).
    pub origin_frames: i64,
}

/// A video encoder and the segments cut from its output.
struct VideoEncode<'a> {
    encoder: ff::encoder::video::Encoder,
    seg: Segmenter<'a>,
    clock: SegmentClock,
    /// First frame of the open segment.
    segment_start: u64,
    /// Size of the open segment's IDR frame (for fMP4 I-frame ranges).
    keyframe_size: Option<u64>,
    /// RFC 6381 codec string, from extradata or the first SPS.
    codec: Option<String>,
}

impl VideoEncode<'_> {
    /// Sends a frame (or, with `None`, end of stream) and muxes every packet
    /// that comes out, cutting a segment before each segment's IDR frame.
    fn encode(&mut self, frame: Option<&ff::frame::Video>) -> Result<(), HlsError> {
        let sent = match frame {
            Some(f) => self.encoder.send_frame(f),
            None => self.encoder.send_eof(),
        };
        sent.map_err(|source| {
            self.seg.media_error(MediaError::Av {
                what: "encoding H.264".into(),
                source,
            })
        })?;
        let origin_ticks = OUTPUT_ORIGIN_SECS * 90_000;
        let mut packet = ff::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let key = packet.is_key();
            if key {
                let pts = packet.pts().unwrap_or(0) - origin_ticks;
                let start = self
                    .clock
                    .first_frame(self.clock.segment_of_time(pts, 1, 90_000));
                if self.seg.open && start > self.segment_start {
                    let duration = self.clock.frame_seconds(start - self.segment_start);
                    self.seg.cut(duration, self.keyframe_size)?;
                    self.segment_start = start;
                }
                self.keyframe_size = Some(packet.size() as u64);
                if self.codec.is_none() {
                    self.codec = packet.data().and_then(codecs::avc1_codec);
                }
            }
            self.seg.write(&mut packet, key)?;
        }
        Ok(())
    }
}

/// Runs a video rendition until its channel ends.
pub fn run_video(
    job: VideoJob,
    shared: &Shared<'_>,
    rx: Receiver<Msg<ff::frame::Video>>,
) -> Result<Finish, HlsError> {
    let media_err = |e: MediaError| HlsError::Media(format!("{}: {e}", job.name), e);
    let encoder = open_h264(&job.h264).map_err(media_err)?;
    let (mut muxer, init) =
        SegmentMuxer::new(shared.format, &encoder, VIDEO_TIME_BASE).map_err(media_err)?;
    if shared.first_segment == 0 {
        muxer.start_stream();
    }
    let clock = shared.clock;
    let mut video = VideoEncode {
        codec: codecs_from_extradata(&encoder),
        encoder,
        seg: Segmenter::new(shared, &job.name, muxer, init)?,
        clock,
        segment_start: clock.first_frame(shared.first_segment),
        keyframe_size: None,
    };
    let mut scaler = Scaler::new(job.h264.width, job.h264.height);
    let origin_ticks = OUTPUT_ORIGIN_SECS * 90_000;
    let mut last_index: Option<u64> = None;
    let ticker = ProgressTicker::new();
    let mut ended = false;
    for msg in rx.iter() {
        let frame = match msg {
            Msg::Item(frame) => frame,
            Msg::End => {
                ended = true;
                break;
            }
        };
        let Some(pts) = frame.pts() else { continue };
        let index = (pts - job.origin_frames) as u64;
        let mut scaled = scaler.scale(frame).map_err(media_err)?;
        let ticks =
            u128::from(index) * 90_000 * u128::from(clock.fps_den) / u128::from(clock.fps_num);
        scaled.set_pts(Some(ticks as i64 + origin_ticks));
        // The first frame of every segment (and of a resumed run) is an IDR.
        let kind = if clock.starts_segment(index) || last_index.is_none() {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        };
        scaled.set_kind(kind);
        video.encode(Some(&scaled))?;
        last_index = Some(index);
        ticker.tick(shared, &job.name, index + 1);
    }
    if !ended {
        return Ok(Finish::Aborted);
    }
    video.encode(None)?;
    let end = last_index.map_or(video.segment_start, |i| i + 1);
    let duration = clock.frame_seconds(end.saturating_sub(video.segment_start));
    video.seg.cut(duration, video.keyframe_size)?;
    let codec = video.codec.or_else(|| {
        let state = shared.checkpoint.snapshot();
        state
            .renditions
            .get(&job.name)
            .and_then(|r| r.codec.clone())
    });
    video.seg.complete(codec)?;
    Ok(Finish::Complete)
}

fn codecs_from_extradata(encoder: &ff::encoder::video::Encoder) -> Option<String> {
    // SAFETY: extradata/extradata_size describe a buffer owned by the
    // opened encoder.
    let extradata = unsafe {
        let ctx = encoder.as_ptr();
        if (*ctx).extradata.is_null() || (*ctx).extradata_size <= 0 {
            return None;
        }
        std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize)
    };
    codecs::avc1_codec(extradata)
}

/// The audio rendition's job.
pub struct AudioJob {
    /// Opened transcoder (decoder, downmix, AAC encoder).
    pub transcoder: AudioTranscoder,
}

/// Name (and directory) of the audio rendition.
pub const AUDIO_RENDITION: &str = "audio";

/// Runs the audio rendition until its channel ends.
pub fn run_audio(
    job: AudioJob,
    shared: &Shared<'_>,
    rx: Receiver<Msg<ff::Packet>>,
) -> Result<Finish, HlsError> {
    let media_err = |e: MediaError| HlsError::Media(format!("audio: {e}"), e);
    let AudioJob { mut transcoder } = job;
    let rate = crate::media::audio::SAMPLE_RATE;
    let (muxer, init) =
        SegmentMuxer::new(shared.format, transcoder.encoder(), ff::Rational(1, rate))
            .map_err(media_err)?;
    let mut seg = Segmenter::new(shared, AUDIO_RENDITION, muxer, init)?;
    let clock = shared.clock;
    let origin = OUTPUT_ORIGIN_SECS * i64::from(rate);
    let mut current = shared.first_segment;
    let mut samples_in_segment: i64 = 0;
    let ticker = ProgressTicker::new();
    let mut handle = |packet: ff::Packet, seg: &mut Segmenter<'_>| -> Result<(), HlsError> {
        let mut packet = packet;
        let pts = packet.pts().unwrap_or(0) - origin;
        if pts < 0 {
            // The encoder's priming packet, before the video's first frame:
            // dropped, so audio and video start together (a player would
            // otherwise see a gap at the start of the video).
            return Ok(());
        }
        let k = clock.segment_of_time(pts, 1, rate as u32);
        if k < shared.first_segment {
            // Priming packets of a resumed run: those segments already exist.
            return Ok(());
        }
        let k = k.max(current);
        if k > current && seg.open {
            seg.cut(samples_in_segment as f64 / f64::from(rate), None)?;
            samples_in_segment = 0;
        }
        current = k;
        samples_in_segment += packet.duration();
        seg.write(&mut packet, false)?;
        let frames = (pts.max(0) as f64 / f64::from(rate) * clock.fps()) as u64;
        ticker.tick(shared, AUDIO_RENDITION, frames);
        Ok(())
    };
    let mut ended = false;
    for msg in rx.iter() {
        match msg {
            Msg::Item(packet) => transcoder.push(&packet, &mut |p| handle(p, &mut seg))?,
            Msg::End => {
                ended = true;
                break;
            }
        }
    }
    if !ended {
        return Ok(Finish::Aborted);
    }
    transcoder.finish(&mut |p| handle(p, &mut seg))?;
    seg.cut(samples_in_segment as f64 / f64::from(rate), None)?;
    seg.complete(Some(codecs::AAC_LC.to_string()))?;
    Ok(Finish::Complete)
}
