//! Audio: decode once, downmix to stereo, encode once to AAC-LC.
//!
//! Runs in its own worker beside the video renditions. Decoded frames go
//! through `aresample`/`aformat` (surround is downmixed by libswresample's
//! standard matrix) and leave the graph in exactly the encoder's frame size,
//! so timestamps stay sample-exact.

use super::{ff, AvContext, MediaError, Result};

/// Output sample rate.
pub const SAMPLE_RATE: i32 = 48_000;

/// Decoder, downmix graph and AAC encoder for one audio stream.
pub struct AudioTranscoder {
    decoder: ff::decoder::Audio,
    encoder: ff::encoder::audio::Encoder,
    graph: Option<ff::filter::Graph>,
    in_time_base: ff::Rational,
    /// Added to the graph's sample timestamps to put them on the output
    /// timeline.
    offset: i64,
    /// Frames starting before this output sample are dropped (resume).
    drop_before: i64,
}

impl AudioTranscoder {
    /// A transcoder for `stream` at `bitrate`; output timestamps are the
    /// input's (in samples) plus `offset`; frames before `drop_before` are
    /// skipped.
    pub fn new(
        stream: &ff::format::stream::Stream,
        bitrate: u64,
        global_header: bool,
        offset: i64,
        drop_before: i64,
    ) -> Result<Self> {
        let decoder = open_decoder(stream)?;
        let encoder = open_aac(bitrate, global_header)?;
        Ok(AudioTranscoder {
            decoder,
            encoder,
            graph: None,
            in_time_base: stream.time_base(),
            offset,
            drop_before,
        })
    }

    /// The opened encoder, for creating the muxer.
    pub fn encoder(&self) -> &ff::encoder::audio::Encoder {
        &self.encoder
    }

    /// Decodes one packet; encoded AAC packets go to `out`.
    pub fn push<E: From<MediaError>>(
        &mut self,
        packet: &ff::Packet,
        out: &mut impl FnMut(ff::Packet) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self.decoder.send_packet(packet) {
            Ok(()) => {}
            Err(ff::Error::InvalidData) => return Ok(()),
            Err(e) => return Err(e).av(|| "decoding audio".into()).map_err(E::from),
        }
        self.drain_decoder(out)
    }

    /// Flushes decoder, graph and encoder at end of input.
    pub fn finish<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(ff::Packet) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let _ = self.decoder.send_eof();
        self.drain_decoder(out)?;
        if let Some(graph) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                src.source()
                    .flush()
                    .av(|| "flushing the audio filter".into())?;
            }
        }
        self.drain_graph(out)?;
        self.encoder
            .send_eof()
            .av(|| "flushing the AAC encoder".into())?;
        self.drain_encoder(out)
    }

    fn drain_decoder<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(ff::Packet) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut decoded = ff::frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            if self.graph.is_none() {
                self.graph = Some(self.build_graph(&decoded)?);
            }
            if let Some(graph) = self.graph.as_mut() {
                if let Some(mut src) = graph.get("in") {
                    src.source().add(&decoded).av(|| "filtering audio".into())?;
                }
            }
            self.drain_graph(out)?;
        }
        Ok(())
    }

    fn drain_graph<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(ff::Packet) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        loop {
            let mut frame = ff::frame::Audio::empty();
            if !super::pull_frame(self.graph.as_mut(), &mut frame) {
                return Ok(());
            }
            let Some(pts) = frame.pts() else { continue };
            let pts = pts + self.offset;
            if pts < self.drop_before {
                continue;
            }
            frame.set_pts(Some(pts));
            self.encoder
                .send_frame(&frame)
                .av(|| "encoding AAC".into())?;
            self.drain_encoder(out)?;
        }
    }

    fn drain_encoder<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(ff::Packet) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut packet = ff::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            out(std::mem::replace(&mut packet, ff::Packet::empty()))?;
        }
        Ok(())
    }

    fn build_graph(&self, first: &ff::frame::Audio) -> Result<ff::filter::Graph> {
        let args = abuffer_args(first, self.in_time_base);
        let chain =
            format!("aresample={SAMPLE_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo");
        let mut graph = super::filter_graph("abuffer", &args, "abuffersink", &chain)?;
        if let Some(mut sink) = graph.get("out") {
            sink.sink().set_frame_size(self.encoder.frame_size());
        }
        Ok(graph)
    }
}

/// Opens the decoder of an audio stream (every job that reads audio
/// starts here).
pub fn open_decoder(stream: &ff::format::stream::Stream) -> Result<ff::decoder::Audio> {
    ff::codec::context::Context::from_parameters(stream.parameters())
        .av(|| "reading the audio stream's parameters".into())?
        .decoder()
        .audio()
        .av(|| "opening the audio decoder".into())
}

/// Opens an AAC-LC stereo 48 kHz encoder at `bitrate` (with the
/// AudioSpecificConfig in extradata when `global_header`, for MP4).
pub fn open_aac(bitrate: u64, global_header: bool) -> Result<ff::encoder::audio::Encoder> {
    let codec = ff::encoder::find(ff::codec::Id::AAC)
        .ok_or_else(|| MediaError::Unsupported("libavcodec has no AAC encoder".into()))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .av(|| "creating the AAC encoder".into())?;
    enc.set_rate(SAMPLE_RATE);
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_channels(2);
    enc.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
    enc.set_bit_rate(bitrate as usize);
    enc.set_time_base(ff::Rational(1, SAMPLE_RATE));
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut options = ff::Dictionary::new();
    options.set("profile", "aac_low");
    enc.open_with(options)
        .av(|| "opening the AAC encoder".into())
}

/// The `abuffer` source arguments for frames shaped like `first`, whose
/// timestamps are in `time_base`.
pub fn abuffer_args(first: &ff::frame::Audio, time_base: ff::Rational) -> String {
    let layout = if first.channel_layout().is_empty() {
        ff::ChannelLayout::default(i32::from(first.channels()))
    } else {
        first.channel_layout()
    };
    let fmt: ff::ffi::AVSampleFormat = first.format().into();
    format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        time_base.numerator(),
        time_base.denominator(),
        first.rate(),
        fmt as i32,
        layout.bits()
    )
}
