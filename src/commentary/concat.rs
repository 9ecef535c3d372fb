//! The final `commentary.mp4`: every chunk joined without a gap, click or
//! drift.
//!
//! Video packets are copied from the chunk MP4s (all chunks share encoder
//! settings and start with an IDR frame, so no re-encode is needed), each
//! chunk's timestamps offset by its first frame on the timeline. Audio is
//! not copied: AAC chunks each carry encoder priming, which would leave a
//! gap or a click at every join. Instead the mixed PCM kept beside each
//! chunk is streamed, in order, into one AAC encoder, so the final track is
//! one continuous encode of exactly the chunks' samples. The MPEG-TS
//! copies for `--hls` ([`TsSeries`]) are made the same way, in order.

use super::{CommentaryError, Timeline};
use crate::media::audio::SAMPLE_RATE;
use crate::media::filemux::FileMuxer;
use crate::media::mux::OUTPUT_ORIGIN_SECS;
use crate::media::pcm::AacStream;
use crate::media::video::VIDEO_TIME_BASE;
use crate::media::{self, ff, MediaError};
use crate::CancelFlag;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// One chunk's parts, as kept on disk.
#[derive(Debug, Clone)]
pub struct ChunkParts {
    /// The chunk MP4.
    pub mp4: PathBuf,
    /// Its mixed audio: interleaved stereo f32 little-endian at 48 kHz.
    pub pcm: PathBuf,
    /// Its first frame on the timeline.
    pub first_frame: u64,
}

/// The final file's audio: one AAC encode of every chunk's mixed PCM, fed
/// in chunk order as the chunks become ready (so little is left to do
/// when the last chunk is done).
pub struct FinalAudio {
    aac: AacStream,
    packets: Vec<ff::Packet>,
    /// Chunks fed so far.
    chunks: usize,
}

impl FinalAudio {
    /// An empty stream.
    pub fn new(audio_bitrate: u64) -> Result<Self, CommentaryError> {
        Ok(FinalAudio {
            aac: AacStream::new(audio_bitrate, true).map_err(media)?,
            packets: Vec::new(),
            chunks: 0,
        })
    }

    /// How many chunks have been fed.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Feeds the next chunk's PCM.
    pub fn push(&mut self, pcm: &[f32]) -> Result<(), CommentaryError> {
        let packets = encode(&mut self.aac, pcm)?;
        self.packets.extend(packets);
        self.chunks += 1;
        Ok(())
    }
}

/// Joins `chunks` (in order) into a progressive MP4 at `out`, with `audio`
/// (fed every chunk's PCM) as its sound.
pub fn join(
    chunks: &[ChunkParts],
    timeline: &Timeline,
    audio: FinalAudio,
    out: &Path,
    cancel: &CancelFlag,
) -> Result<(), CommentaryError> {
    let first = chunks
        .first()
        .ok_or_else(|| CommentaryError::Internal("there are no chunks to join".into()))?;
    if audio.chunks != chunks.len() {
        return Err(CommentaryError::Internal(format!(
            "the final audio covers {} of {} chunks",
            audio.chunks,
            chunks.len()
        )));
    }
    let FinalAudio {
        aac, mut packets, ..
    } = audio;
    let mut tail = Vec::new();
    let encoder = aac
        .finish(&mut |p| {
            tail.push(p);
            Ok(())
        })
        .map_err(media)?;
    packets.extend(tail);
    let mut mux = FileMuxer::create(out, "mp4").map_err(media)?;
    let video = mux
        .add_copy(video_parameters(&first.mp4)?, VIDEO_TIME_BASE)
        .map_err(media)?;
    let audio = mux
        .add_encoder(&encoder, ff::Rational(1, SAMPLE_RATE))
        .map_err(media)?;
    mux.start(&[("movflags", "+faststart")]).map_err(media)?;
    let mut packets = packets.into_iter().peekable();
    for (i, chunk) in chunks.iter().enumerate() {
        if cancel.load(Ordering::SeqCst) {
            return Err(CommentaryError::Interrupted);
        }
        copy_video(
            chunk,
            timeline.ticks_of(chunk.first_frame),
            timeline,
            &mut mux,
            video,
        )?;
        // The audio of this chunk's span, so the muxer interleaves as it goes.
        let end = chunks
            .get(i + 1)
            .map_or(i64::MAX, |next| timeline.sample_of(next.first_frame));
        while let Some(p) = packets.next_if(|p| p.pts().unwrap_or(0) < end) {
            mux.write(audio, p).map_err(media)?;
        }
    }
    mux.finish().map_err(media)
}

/// The MPEG-TS copies of the chunks for `--hls`, made in order with one
/// continuous AAC encoder, so the audio runs on across segment boundaries
/// without a priming gap at each (audio packets straddling a boundary go
/// to the next segment, as in any HLS stream). Timestamps sit on the whole
/// video's timeline from [`OUTPUT_ORIGIN_SECS`].
pub struct TsSeries {
    aac: Option<AacStream>,
    timeline: Timeline,
    /// Timeline sample the encoder's first sample belongs to.
    audio_origin: i64,
    /// The chunk this series expects next.
    next_index: u32,
}

impl TsSeries {
    /// A series starting at chunk `index` (whose first frame is
    /// `first_frame`).
    pub fn new(
        audio_bitrate: u64,
        timeline: Timeline,
        index: u32,
        first_frame: u64,
    ) -> Result<Self, CommentaryError> {
        Ok(TsSeries {
            aac: Some(AacStream::new(audio_bitrate, true).map_err(media)?),
            timeline,
            audio_origin: timeline.sample_of(first_frame),
            next_index: index,
        })
    }

    /// The chunk this series can take next.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Writes chunk `index` (with its mixed `pcm`) as MPEG-TS to `out`;
    /// `last` flushes the audio.
    pub fn segment(
        &mut self,
        index: u32,
        chunk: &ChunkParts,
        pcm: &[f32],
        last: bool,
        out: &Path,
    ) -> Result<(), CommentaryError> {
        let aac = self
            .aac
            .as_mut()
            .ok_or_else(|| CommentaryError::Internal("the HLS audio encoder is finished".into()))?;
        let mut mux = FileMuxer::create(out, "mpegts").map_err(media)?;
        let video = mux
            .add_copy(video_parameters(&chunk.mp4)?, VIDEO_TIME_BASE)
            .map_err(media)?;
        let audio = mux
            .add_encoder(aac.encoder(), ff::Rational(1, SAMPLE_RATE))
            .map_err(media)?;
        mux.start(&[("mpegts_copyts", "1")]).map_err(media)?;
        let origin = OUTPUT_ORIGIN_SECS * 90_000;
        let tl = self.timeline;
        copy_video(
            chunk,
            origin + tl.ticks_of(chunk.first_frame),
            &tl,
            &mut mux,
            video,
        )?;
        let mut packets = encode(aac, pcm)?;
        if last {
            if let Some(aac) = self.aac.take() {
                packets.extend(finish(aac)?);
            }
        }
        let shift = OUTPUT_ORIGIN_SECS * i64::from(SAMPLE_RATE) + self.audio_origin;
        write_all(&mut mux, audio, packets, shift)?;
        mux.finish().map_err(media)?;
        self.next_index = index + 1;
        Ok(())
    }
}

fn media(e: MediaError) -> CommentaryError {
    CommentaryError::Media(format!("joining the chunks: {e}"), e)
}

/// Codec parameters of a chunk's video stream.
fn video_parameters(mp4: &Path) -> Result<ff::codec::Parameters, CommentaryError> {
    let ictx = open(mp4)?;
    let stream = ictx
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| bad_chunk(mp4, "no video stream"))?;
    Ok(stream.parameters())
}

/// Copies a chunk's video packets into `stream` of `mux`, shifted by
/// `offset` 90 kHz ticks.
fn copy_video(
    chunk: &ChunkParts,
    offset: i64,
    timeline: &Timeline,
    mux: &mut FileMuxer,
    stream: usize,
) -> Result<(), CommentaryError> {
    let mut ictx = open(&chunk.mp4)?;
    let (index, time_base) = ictx
        .streams()
        .best(ff::media::Type::Video)
        .map(|s| (s.index(), s.time_base()))
        .ok_or_else(|| bad_chunk(&chunk.mp4, "no video stream"))?;
    for (s, mut packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        packet.rescale_ts(time_base, VIDEO_TIME_BASE);
        packet.set_pts(packet.pts().map(|t| t + offset));
        packet.set_dts(packet.dts().map(|t| t + offset));
        // Constant rate: every frame lasts one frame (the demuxer may not
        // say so for the last one, which would shorten the join).
        packet.set_duration(timeline.ticks_of(1));
        mux.write(stream, packet).map_err(media)?;
    }
    Ok(())
}

fn encode(aac: &mut AacStream, pcm: &[f32]) -> Result<Vec<ff::Packet>, CommentaryError> {
    let mut packets = Vec::new();
    aac.push(pcm, &mut |p| {
        packets.push(p);
        Ok(())
    })
    .map_err(media)?;
    Ok(packets)
}

fn finish(aac: AacStream) -> Result<Vec<ff::Packet>, CommentaryError> {
    let mut packets = Vec::new();
    aac.finish(&mut |p| {
        packets.push(p);
        Ok(())
    })
    .map_err(media)?;
    Ok(packets)
}

fn write_all(
    mux: &mut FileMuxer,
    stream: usize,
    packets: Vec<ff::Packet>,
    shift: i64,
) -> Result<(), CommentaryError> {
    for mut p in packets {
        p.set_pts(p.pts().map(|t| t + shift));
        p.set_dts(p.dts().map(|t| t + shift));
        mux.write(stream, p).map_err(media)?;
    }
    Ok(())
}

fn open(path: &Path) -> Result<ff::format::context::Input, CommentaryError> {
    media::open_input(&path.to_string_lossy()).map_err(|e| bad_chunk(path, &e.to_string()))
}

fn bad_chunk(path: &Path, reason: &str) -> CommentaryError {
    CommentaryError::ChunkFile(format!(
        "chunk {} cannot be read ({reason}); delete it and run again to rebuild it",
        path.display()
    ))
}

/// Writes PCM as the sidecar format: f32 little-endian, interleaved.
pub fn pcm_bytes(pcm: &[f32]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Reads a PCM sidecar.
pub fn read_pcm(path: &Path) -> Result<Vec<f32>, CommentaryError> {
    let bytes = std::fs::read(path).map_err(|e| {
        CommentaryError::ChunkFile(format!(
            "the mixed audio of a chunk ({}) cannot be read: {e}",
            path.display()
        ))
    })?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_sidecar_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.f32");
        let pcm = vec![0.0f32, -1.0, 0.5, 1e-7, f32::MAX];
        std::fs::write(&path, pcm_bytes(&pcm)).expect("write");
        assert_eq!(read_pcm(&path).expect("read"), pcm);
    }
}
