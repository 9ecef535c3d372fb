//! The final `commentary.mp4`: every chunk joined without a gap, click or
//! drift.
//!
//! Video packets are copied from the chunk MP4s (all chunks share encoder
//! settings and start with an IDR frame, so no re-encode is needed), each
//! chunk's timestamps offset by its first frame on the timeline. Audio is
//! not copied: AAC chunks each carry encoder priming, which would leave a
//! gap or a click at every join. Instead the mixed PCM kept beside each
//! chunk is streamed, in order, into one AAC encoder, so the final track is
//! one continuous encode of exactly the chunks' samples.

use super::{CommentaryError, Timeline};
use crate::media::audio::SAMPLE_RATE;
use crate::media::filemux::FileMuxer;
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

/// Joins `chunks` (in order) into a progressive MP4 at `out`.
pub fn join(
    chunks: &[ChunkParts],
    timeline: &Timeline,
    audio_bitrate: u64,
    out: &Path,
    cancel: &CancelFlag,
) -> Result<(), CommentaryError> {
    let media = |e: MediaError| CommentaryError::Media(format!("joining the chunks: {e}"), e);
    let first = chunks
        .first()
        .ok_or_else(|| CommentaryError::Input("there are no chunks to join".into()))?;
    let parameters = {
        let ictx = open(&first.mp4)?;
        let stream = ictx
            .streams()
            .best(ff::media::Type::Video)
            .ok_or_else(|| bad_chunk(&first.mp4, "no video stream"))?;
        stream.parameters()
    };
    let mut mux = FileMuxer::create(out, "mp4").map_err(media)?;
    let video = mux.add_copy(parameters, VIDEO_TIME_BASE).map_err(media)?;
    let mut aac = AacStream::new(audio_bitrate, true).map_err(media)?;
    let audio = mux
        .add_encoder(aac.encoder(), ff::Rational(1, SAMPLE_RATE))
        .map_err(media)?;
    mux.start(&[("movflags", "+faststart")]).map_err(media)?;
    for chunk in chunks {
        if cancel.load(Ordering::SeqCst) {
            return Err(CommentaryError::Interrupted);
        }
        let offset = timeline.ticks_of(chunk.first_frame);
        let mut ictx = open(&chunk.mp4)?;
        let (index, time_base) = ictx
            .streams()
            .best(ff::media::Type::Video)
            .map(|s| (s.index(), s.time_base()))
            .ok_or_else(|| bad_chunk(&chunk.mp4, "no video stream"))?;
        for (stream, mut packet) in ictx.packets() {
            if stream.index() != index {
                continue;
            }
            packet.rescale_ts(time_base, VIDEO_TIME_BASE);
            packet.set_pts(packet.pts().map(|t| t + offset));
            packet.set_dts(packet.dts().map(|t| t + offset));
            // Constant rate: every frame lasts one frame (the demuxer may not
            // say so for the last one, which would shorten the join).
            packet.set_duration(timeline.ticks_of(1));
            mux.write(video, packet).map_err(media)?;
        }
        let pcm = read_pcm(&chunk.pcm)?;
        let mut packets = Vec::new();
        aac.push(&pcm, &mut |p| {
            packets.push(p);
            Ok(())
        })
        .map_err(media)?;
        for p in packets {
            mux.write(audio, p).map_err(media)?;
        }
    }
    let mut packets = Vec::new();
    aac.finish(&mut |p| {
        packets.push(p);
        Ok(())
    })
    .map_err(media)?;
    for p in packets {
        mux.write(audio, p).map_err(media)?;
    }
    mux.finish().map_err(media)
}

fn open(path: &Path) -> Result<ff::format::context::Input, CommentaryError> {
    media::open_input(&path.to_string_lossy()).map_err(|e| bad_chunk(path, &e.to_string()))
}

fn bad_chunk(path: &Path, reason: &str) -> CommentaryError {
    CommentaryError::Input(format!(
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
        CommentaryError::Input(format!(
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
