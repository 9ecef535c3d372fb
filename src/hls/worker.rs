//! Rendition workers: one per group of video renditions (see
//! [`super::scaling`]) plus one for audio.
//!
//! The demux thread sends the first video group each decoded frame and the
//! audio worker each audio packet, as [`Msg`]s. A group worker makes each
//! of its renditions' pictures (scaled from the frame or from a larger
//! rendition's picture), passes the pictures later groups need to the next
//! group, then encodes its renditions, forcing an IDR frame on each
//! segment's first frame; the audio worker decodes and encodes packets.
//! Both cut their muxer's output at segment boundaries given by the shared
//! [`SegmentClock`], store the segment, record it in the checkpoint and
//! announce it. A worker whose channel closes without [`Msg::End`] was
//! aborted: it drops its unfinished segments and keeps the checkpoint.

use super::checkpoint::CheckpointFile;
use super::clock::SegmentClock;
use super::playlist::{iframe_playlist, media_playlist, Bandwidth, SegmentInfo};
use super::scaling::{entry, Member};
use super::HlsError;
use crate::cpu::{self, Helpers, Ledger, Stage};
use crate::media::mux::{SegmentFormat, SegmentMuxer, OUTPUT_ORIGIN_SECS};
use crate::media::video::{open_h264, share_frame, H264Settings, Scaler, VIDEO_TIME_BASE};
use crate::media::{audio::AudioTranscoder, codecs, ff, MediaError};
use crate::progress::{Event, Reporter, Throttle};
use crate::storage::Destination;
use std::sync::mpsc::{Receiver, SyncSender};

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
    /// Where the workers' CPU figures go.
    pub cpu: &'a Ledger,
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
        let bytes = cpu::time(&self.rendition, Stage::Mux, || self.muxer.cut())
            .map_err(|e| self.media_error(e))?;
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
        let part = self.rendition.clone();
        cpu::time(&part, Stage::Store, || {
            self.store(&uri, iframe, duration, &bytes)
        })
    }

    /// Stores a cut segment, records it in the checkpoint and announces it.
    fn store(
        &mut self,
        uri: &str,
        iframe: Option<(u64, u64)>,
        duration: f64,
        bytes: &[u8],
    ) -> Result<(), HlsError> {
        put(self.shared, &format!("{}/{uri}", self.rendition), bytes)?;
        let info = SegmentInfo {
            uri: uri.to_string(),
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
        cpu::time(&self.rendition, Stage::Mux, || self.muxer.write(packet))
            .map_err(|e| self.media_error(e))?;
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

/// One frame's pictures as they pass along the group pipeline: entry 0 is
/// the decoded frame, entry `m + 1` member `m`'s picture (see
/// [`entry`]); `None` where no later group needs it.
pub type Pictures = Vec<Option<ff::frame::Video>>;

/// Puts `picture` at `entry`, growing `pictures` as needed.
fn set_entry(pictures: &mut Pictures, entry: usize, picture: ff::frame::Video) {
    if pictures.len() <= entry {
        pictures.resize_with(entry + 1, || None);
    }
    pictures[entry] = Some(picture);
}

/// One rendition of a group: scaled from an earlier entry, and encoded
/// unless it is only scaled for a rendition below it.
pub struct MemberJob {
    /// Which member of the plan, and where its pictures come from.
    pub member: Member,
    /// Its index in the plan's members.
    pub index: usize,
    /// The rendition.
    pub job: VideoJob,
}

/// What one group worker does.
pub struct GroupJob {
    /// Its renditions, largest first.
    pub members: Vec<MemberJob>,
    /// Entries the next group needs.
    pub forward: Vec<usize>,
    /// The next group's channel.
    pub next: Option<SyncSender<Msg<Pictures>>>,
}

/// A member's scaler and, when it is encoded, its encoder.
struct MemberWork<'a> {
    name: String,
    /// Entry this member's picture goes to.
    entry: usize,
    /// Entry it is scaled from.
    from: usize,
    scaler: Scaler,
    video: Option<VideoEncode<'a>>,
    /// The encoder's own threads.
    encoder_threads: Helpers,
    origin_frames: i64,
    last_index: Option<u64>,
    ticker: ProgressTicker,
}

impl<'a> MemberWork<'a> {
    fn new(m: MemberJob, shared: &'a Shared<'a>) -> Result<Self, HlsError> {
        let MemberJob { member, index, job } = m;
        let mut encoder_threads = Helpers::default();
        let video = if member.encode {
            let media_err = |e: MediaError| HlsError::Media(format!("{}: {e}", job.name), e);
            let (encoder, threads) = Helpers::around(|| open_h264(&job.h264));
            encoder_threads = threads;
            let encoder = encoder.map_err(media_err)?;
            let (mut muxer, init) =
                SegmentMuxer::new(shared.format, &encoder, VIDEO_TIME_BASE).map_err(media_err)?;
            if shared.first_segment == 0 {
                muxer.start_stream();
            }
            Some(VideoEncode {
                codec: codecs_from_extradata(&encoder),
                encoder,
                seg: Segmenter::new(shared, &job.name, muxer, init)?,
                clock: shared.clock,
                segment_start: shared.clock.first_frame(shared.first_segment),
                keyframe_size: None,
            })
        } else {
            None
        };
        Ok(MemberWork {
            entry: entry(Some(index)),
            from: entry(member.parent),
            scaler: Scaler::new(job.h264.width, job.h264.height),
            name: job.name,
            video,
            encoder_threads,
            origin_frames: job.origin_frames,
            last_index: None,
            ticker: ProgressTicker::new(),
        })
    }

    /// Makes this member's picture from an earlier entry of `pictures`.
    fn scale(&mut self, pictures: &mut Pictures) -> Result<(), HlsError> {
        let input = pictures
            .get(self.from)
            .and_then(Option::as_ref)
            .ok_or_else(|| HlsError::Internal(format!("{}: no picture to scale", self.name)))?;
        let input = share_frame(input).map_err(|e| self.media_error(e))?;
        let scaler = &mut self.scaler;
        let picture = cpu::time(&self.name, Stage::Scale, || scaler.scale(input))
            .map_err(|e| self.media_error(e))?;
        set_entry(pictures, self.entry, picture);
        Ok(())
    }

    /// Encodes this member's picture of frame `pts`, if it is encoded.
    fn encode(
        &mut self,
        shared: &Shared<'_>,
        pictures: &Pictures,
        pts: i64,
    ) -> Result<(), HlsError> {
        let Some(video) = self.video.as_mut() else {
            return Ok(());
        };
        let Some(picture) = pictures.get(self.entry).and_then(Option::as_ref) else {
            return Ok(());
        };
        let clock = shared.clock;
        let index = (pts - self.origin_frames) as u64;
        let mut frame = share_frame(picture).map_err(|e| video.seg.media_error(e))?;
        let ticks =
            u128::from(index) * 90_000 * u128::from(clock.fps_den) / u128::from(clock.fps_num);
        frame.set_pts(Some(ticks as i64 + OUTPUT_ORIGIN_SECS * 90_000));
        // The first frame of every segment (and of a resumed run) is an IDR.
        let kind = if clock.starts_segment(index) || self.last_index.is_none() {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        };
        frame.set_kind(kind);
        cpu::time(&self.name, Stage::Encode, || video.encode(Some(&frame)))?;
        self.last_index = Some(index);
        self.ticker.tick(shared, &self.name, index + 1);
        Ok(())
    }

    /// At the end of the input: flushes the encoder, cuts the last
    /// segment and writes the playlists.
    fn finish(self, shared: &Shared<'_>) -> Result<(), HlsError> {
        let Some(mut video) = self.video else {
            return Ok(());
        };
        let clock = shared.clock;
        cpu::time(&self.name, Stage::Encode, || video.encode(None))?;
        cpu::add(&self.name, Stage::Encode, self.encoder_threads.cpu());
        let end = self.last_index.map_or(video.segment_start, |i| i + 1);
        let duration = clock.frame_seconds(end.saturating_sub(video.segment_start));
        video.seg.cut(duration, video.keyframe_size)?;
        let codec = video.codec.or_else(|| {
            let state = shared.checkpoint.snapshot();
            state
                .renditions
                .get(&self.name)
                .and_then(|r| r.codec.clone())
        });
        cpu::time(&self.name, Stage::Store, || video.seg.complete(codec))
    }

    fn media_error(&self, e: MediaError) -> HlsError {
        HlsError::Media(format!("{}: {e}", self.name), e)
    }
}

/// A group of video renditions at work: for each frame, every member's
/// picture is scaled, the pictures the next group needs are passed on,
/// then every encoded member encodes its picture.
pub struct GroupWorker<'a> {
    shared: &'a Shared<'a>,
    members: Vec<MemberWork<'a>>,
    forward: Vec<usize>,
    next: Option<SyncSender<Msg<Pictures>>>,
}

impl<'a> GroupWorker<'a> {
    /// Opens the group's encoders.
    pub fn new(group: GroupJob, shared: &'a Shared<'a>) -> Result<Self, HlsError> {
        let members = group
            .members
            .into_iter()
            .map(|m| MemberWork::new(m, shared))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GroupWorker {
            shared,
            members,
            forward: group.forward,
            next: group.next,
        })
    }

    /// Handles one frame's pictures; `Ok(false)` when the next group has
    /// stopped (its own result says why).
    pub fn frame(&mut self, mut pictures: Pictures) -> Result<bool, HlsError> {
        // Every picture of a frame carries the decoded frame's timestamp.
        let Some(pts) = pictures.iter().flatten().find_map(|f| f.pts()) else {
            return Ok(true);
        };
        for m in &mut self.members {
            m.scale(&mut pictures)?;
        }
        if let Some(next) = &self.next {
            let mut passed = Pictures::new();
            for &e in &self.forward {
                if let Some(picture) = pictures.get(e).and_then(Option::as_ref) {
                    let shared =
                        share_frame(picture).map_err(|e| HlsError::Internal(e.to_string()))?;
                    set_entry(&mut passed, e, shared);
                }
            }
            if next.send(Msg::Item(passed)).is_err() {
                return Ok(false);
            }
        }
        for m in &mut self.members {
            m.encode(self.shared, &pictures, pts)?;
        }
        Ok(true)
    }

    /// At the end of the input: tells the next group, finishes every
    /// rendition and hands over this thread's CPU figures.
    pub fn end(self) -> Result<Finish, HlsError> {
        if let Some(next) = &self.next {
            let _ = next.send(Msg::End);
        }
        for m in self.members {
            m.finish(self.shared)?;
        }
        self.shared.cpu.collect();
        Ok(Finish::Complete)
    }
}

/// Runs a group of video renditions on its own thread until its channel
/// ends.
pub fn run_group(
    group: GroupJob,
    shared: &Shared<'_>,
    rx: Receiver<Msg<Pictures>>,
) -> Result<Finish, HlsError> {
    cpu::reset();
    let mut worker = GroupWorker::new(group, shared)?;
    for msg in rx.iter() {
        match msg {
            Msg::Item(pictures) => {
                if !worker.frame(pictures)? {
                    return Ok(Finish::Aborted);
                }
            }
            Msg::End => return worker.end(),
        }
    }
    Ok(Finish::Aborted)
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
    cpu::reset();
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
            Msg::Item(packet) => cpu::time(AUDIO_RENDITION, Stage::Encode, || {
                transcoder.push(&packet, &mut |p| handle(p, &mut seg))
            })?,
            Msg::End => {
                ended = true;
                break;
            }
        }
    }
    if !ended {
        return Ok(Finish::Aborted);
    }
    cpu::time(AUDIO_RENDITION, Stage::Encode, || {
        transcoder.finish(&mut |p| handle(p, &mut seg))
    })?;
    seg.cut(samples_in_segment as f64 / f64::from(rate), None)?;
    cpu::time(AUDIO_RENDITION, Stage::Store, || {
        seg.complete(Some(codecs::AAC_LC.to_string()))
    })?;
    shared.cpu.collect();
    Ok(Finish::Complete)
}
