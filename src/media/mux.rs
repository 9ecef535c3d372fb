//! Segment muxers that write to memory.
//!
//! One libav muxer per rendition runs for the whole encode, so MPEG-TS
//! continuity counters and fMP4 fragment sequence numbers and decode times
//! continue across segments exactly as a player expects. Its output goes to
//! an in-memory buffer through custom I/O; at each segment boundary the
//! muxer is flushed and the bytes since the previous boundary become one
//! segment. The caller decides where segments go (local file, S3).

use super::{ff, AvContext, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Output time origin: every output timeline starts at 10 s, so decode
/// timestamps of B-frames and AAC priming never go negative (libav would
/// otherwise shift each rendition differently). MPEG-TS PTS 900000.
pub const OUTPUT_ORIGIN_SECS: i64 = 10;

/// Container of the media segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SegmentFormat {
    /// MPEG-2 transport stream (`.ts`), playable everywhere.
    #[default]
    Ts,
    /// Fragmented MP4 (`init.mp4` + `.m4s`).
    Fmp4,
}

impl SegmentFormat {
    /// File extension of media segments.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentFormat::Ts => "ts",
            SegmentFormat::Fmp4 => "m4s",
        }
    }

    /// Name of the initialization segment, if the format has one.
    pub fn init_segment(self) -> Option<&'static str> {
        match self {
            SegmentFormat::Ts => None,
            SegmentFormat::Fmp4 => Some("init.mp4"),
        }
    }
}

/// A growable byte buffer shared between the muxer's I/O callbacks and us.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("segment buffer poisoned"))?;
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A one-stream muxer whose output is cut into segments.
pub struct SegmentMuxer {
    octx: ff::format::context::Output,
    buffer: SharedBuf,
    format: SegmentFormat,
    encoder_time_base: ff::Rational,
    stream_time_base: ff::Rational,
    started: bool,
    /// Decode times still being pulled up to the first frame's
    /// presentation time (see [`SegmentMuxer::start_stream`]); `Some` with
    /// the last decode time written while that lasts.
    lead_in: Option<Option<i64>>,
}

impl SegmentMuxer {
    /// Creates the muxer for an opened encoder and writes its header.
    /// Returns the muxer and, for fMP4, the initialization segment.
    pub fn new<E: AsRef<ff::codec::Context>>(
        format: SegmentFormat,
        encoder: &E,
        encoder_time_base: ff::Rational,
    ) -> Result<(Self, Option<Vec<u8>>)> {
        let buffer = SharedBuf::default();
        let io = ff::format::context::StreamIo::from_write(buffer.clone())
            .av(|| "allocating muxer I/O".into())?;
        let name = match format {
            SegmentFormat::Ts => "mpegts",
            SegmentFormat::Fmp4 => "mp4",
        };
        let mut octx = ff::format::output_to_stream(io, None, Some(name))
            .av(|| format!("creating the {name} muxer"))?;
        {
            let mut stream = octx
                .add_stream(encoder.as_ref().codec())
                .av(|| "adding the output stream".into())?;
            stream.set_parameters(encoder);
            stream.set_time_base(encoder_time_base);
            // SAFETY: the stream belongs to `octx`; codec_tag 0 lets the
            // muxer choose the tag for its container.
            unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
        }
        // SAFETY: plain field of the context we own, set before the header.
        // Lets the TS muxer pack several AAC frames into one PES (up to
        // 0.35 s) as the ffmpeg CLI does, instead of one PES per frame; with
        // copyts it does not shift timestamps.
        unsafe { (*octx.as_mut_ptr()).max_delay = 700_000 };
        let mut options = ff::Dictionary::new();
        match format {
            SegmentFormat::Ts => {
                // Write our timestamps as given (the origin already keeps
                // them positive), so all renditions share one timeline.
                options.set("mpegts_copyts", "1");
                // PAT/PMT/SDT once at the start of each segment (we ask for
                // that explicitly), not every 0.1 s: at low bitrates the
                // periodic tables cost several percent of the bandwidth.
                options.set("pat_period", "3600");
                options.set("sdt_period", "3600");
            }
            SegmentFormat::Fmp4 => {
                options.set(
                    "movflags",
                    // Negative composition offsets: the first frame's
                    // decode time is its presentation time, so a player
                    // sees the video start at the origin, not one B-frame
                    // delay after it.
                    "+frag_custom+empty_moov+default_base_moof+skip_trailer+negative_cts_offsets",
                );
            }
        }
        octx.write_header_with(options)
            .av(|| format!("writing the {name} header"))?;
        let stream_time_base = octx
            .stream(0)
            .map(|s| s.time_base())
            .unwrap_or(encoder_time_base);
        let mut muxer = SegmentMuxer {
            octx,
            buffer,
            format,
            encoder_time_base,
            stream_time_base,
            started: false,
            lead_in: None,
        };
        let init = match format {
            SegmentFormat::Fmp4 => Some(muxer.take()),
            SegmentFormat::Ts => None,
        };
        Ok((muxer, init))
    }

    /// Marks this muxer as writing the very start of the stream. In
    /// MPEG-TS, video with B-frames begins with a decode time one reorder
    /// delay before its first presentation time, and players that place
    /// the timeline at the lowest decode time (hls.js) then see a gap at
    /// the start of the video. The first frame's decode time is set to its
    /// presentation time and the next ones follow one tick apart until the
    /// encoder's own catch up, which keeps every decode time increasing and
    /// never after its presentation time (the first frame is displayed
    /// first). fMP4 gets the same with negative composition offsets.
    pub fn start_stream(&mut self) {
        if self.format == SegmentFormat::Ts {
            self.lead_in = Some(None);
        }
    }

    /// Writes one encoded packet (timestamps in the encoder's time base).
    pub fn write(&mut self, packet: &mut ff::Packet) -> Result<()> {
        if let Some(last) = self.lead_in {
            if let (Some(pts), Some(dts)) = (packet.pts(), packet.dts()) {
                let pulled = last.map_or(pts, |last| dts.max(last + 1));
                self.lead_in = (pulled != dts).then_some(Some(pulled));
                packet.set_dts(Some(pulled));
            }
        }
        if !self.started && self.format == SegmentFormat::Ts {
            self.resend_headers();
        }
        self.started = true;
        packet.set_stream(0);
        packet.rescale_ts(self.encoder_time_base, self.stream_time_base);
        packet
            .write(&mut self.octx)
            .av(|| "muxing a packet".into())?;
        Ok(())
    }

    /// Bytes the current segment holds so far (flushes libav's I/O buffer).
    pub fn segment_position(&mut self) -> u64 {
        self.flush_io();
        let held = self.buffer.0.lock().map(|b| b.len()).unwrap_or(0) as u64;
        held
    }

    /// Ends the current segment and returns its bytes.
    pub fn cut(&mut self) -> Result<Vec<u8>> {
        // SAFETY: a null packet asks a muxer with AVFMT_ALLOW_FLUSH (mpegts,
        // mp4) to write out what it buffers: the fragment, pending PES.
        let ret = unsafe { ff::ffi::av_write_frame(self.octx.as_mut_ptr(), std::ptr::null_mut()) };
        if ret < 0 {
            return Err(ff::Error::from(ret)).av(|| "flushing a segment".into());
        }
        self.started = false;
        Ok(self.take())
    }

    /// Finishes the stream: writes the trailer and returns the last bytes
    /// (normally empty, since the last segment was already cut).
    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.octx
            .write_trailer()
            .av(|| "finishing the muxer".into())?;
        Ok(self.take())
    }

    fn take(&mut self) -> Vec<u8> {
        self.flush_io();
        let bytes = self
            .buffer
            .0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default();
        bytes
    }

    fn flush_io(&mut self) {
        // SAFETY: pb is the custom AVIOContext owned by `octx`.
        unsafe {
            let pb = (*self.octx.as_mut_ptr()).pb;
            if !pb.is_null() {
                ff::ffi::avio_flush(pb);
            }
        }
    }

    /// Makes the TS muxer repeat PAT/PMT before the next packet, so every
    /// segment can be decoded on its own.
    fn resend_headers(&mut self) {
        let key = c"mpegts_flags";
        let value = c"+resend_headers";
        // SAFETY: priv_data is the mpegts muxer's option context; an
        // unknown option only returns an error code.
        unsafe {
            let ctx = self.octx.as_mut_ptr();
            ff::ffi::av_opt_set((*ctx).priv_data, key.as_ptr(), value.as_ptr(), 0);
        }
    }
}
