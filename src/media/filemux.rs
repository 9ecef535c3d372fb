//! Whole-file muxers: progressive MP4 (`+faststart`, moov before mdat) and
//! MPEG-TS files written in one go, from encoders or from copied streams.
//!
//! MP4 faststart needs a seekable file (libav rewrites it to move the moov
//! atom to the front), so output goes to a path; callers write to a temp
//! path and publish the finished bytes.

use super::{ff, AvContext, Result};
use std::path::Path;

/// A muxer writing one file.
pub struct FileMuxer {
    octx: ff::format::context::Output,
    /// Per stream: the time base packets arrive in.
    source_time_bases: Vec<ff::Rational>,
    what: String,
}

impl FileMuxer {
    /// Creates `path` as container `format` (`mp4`, `mpegts`).
    pub fn create(path: &Path, format: &str) -> Result<Self> {
        super::init();
        let octx = ff::format::output_as(path, format)
            .av(|| format!("creating {} ({format})", path.display()))?;
        Ok(FileMuxer {
            octx,
            source_time_bases: Vec::new(),
            what: path.display().to_string(),
        })
    }

    /// Adds a stream fed by an opened encoder; packets come in `time_base`.
    pub fn add_encoder<E: AsRef<ff::codec::Context>>(
        &mut self,
        encoder: &E,
        time_base: ff::Rational,
    ) -> Result<usize> {
        let codec = encoder.as_ref().codec();
        let mut stream = self
            .octx
            .add_stream(codec)
            .av(|| "adding an output stream".into())?;
        stream.set_parameters(encoder);
        stream.set_time_base(time_base);
        Self::clear_tag(&mut stream);
        let index = stream.index();
        self.source_time_bases.push(time_base);
        Ok(index)
    }

    /// Adds a stream copied from another file's stream; packets come in
    /// `time_base`.
    pub fn add_copy(
        &mut self,
        parameters: ff::codec::Parameters,
        time_base: ff::Rational,
    ) -> Result<usize> {
        let mut stream = self
            .octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .av(|| "adding an output stream".into())?;
        stream.set_parameters(parameters);
        stream.set_time_base(time_base);
        Self::clear_tag(&mut stream);
        let index = stream.index();
        self.source_time_bases.push(time_base);
        Ok(index)
    }

    fn clear_tag(stream: &mut ff::format::stream::StreamMut<'_>) {
        // SAFETY: the stream belongs to our context; codec_tag 0 lets the
        // muxer pick the tag for its container.
        unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
    }

    /// Writes the header with muxer `options` (e.g. `movflags`).
    pub fn start(&mut self, options: &[(&str, &str)]) -> Result<()> {
        let mut dict = ff::Dictionary::new();
        for (k, v) in options {
            dict.set(k, v);
        }
        self.octx
            .write_header_with(dict)
            .av(|| format!("writing the header of {}", self.what))?;
        Ok(())
    }

    /// Writes a packet of `stream` (timestamps in that stream's source time
    /// base); libav interleaves the streams.
    pub fn write(&mut self, stream: usize, mut packet: ff::Packet) -> Result<()> {
        let to = self
            .octx
            .stream(stream)
            .map(|s| s.time_base())
            .unwrap_or(ff::Rational(1, 90_000));
        let from = self.source_time_bases.get(stream).copied().unwrap_or(to);
        packet.set_stream(stream);
        packet.set_position(-1);
        packet.rescale_ts(from, to);
        packet
            .write_interleaved(&mut self.octx)
            .av(|| format!("writing a packet to {}", self.what))
    }

    /// Writes the trailer (for MP4 `+faststart`, moves the moov atom to the
    /// front).
    pub fn finish(mut self) -> Result<()> {
        self.octx
            .write_trailer()
            .av(|| format!("finishing {}", self.what))
    }
}
