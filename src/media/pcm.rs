//! Uncompressed audio: decode to PCM, filter PCM through multi-input graphs,
//! encode PCM to AAC.
//!
//! Jobs that edit sound (mixing a voice over a programme) work on exact
//! sample ranges: [`PcmCollector`] decodes a stream into interleaved stereo
//! `f32` at 48 kHz placed by timestamp into a window, so pieces decoded
//! separately join sample for sample. [`mix_graph`] runs such buffers
//! through a libavfilter graph with several inputs, and [`AacStream`]
//! encodes PCM once, however it was assembled.

use super::audio::{abuffer_args, open_aac, open_decoder, SAMPLE_RATE};
use super::{ff, open_input, AvContext, MediaError, Result};

/// Channels of every PCM buffer (interleaved stereo).
pub const CHANNELS: usize = 2;

/// The `abuffer` arguments of vidpipe's PCM: packed float stereo 48 kHz,
/// timestamps in samples.
pub fn pcm_abuffer_args() -> String {
    format!(
        "time_base=1/{SAMPLE_RATE}:sample_rate={SAMPLE_RATE}:sample_fmt=flt:channel_layout=0x{:x}",
        ff::ChannelLayout::STEREO.bits()
    )
}

/// Where decoded samples go.
#[derive(Debug, Clone, Copy)]
pub enum Placement {
    /// One after another from the first decoded sample (a voice clip).
    Append,
    /// By timestamp into the window `[start, end)` of the timeline, in
    /// samples; `origin` is the stream time (seconds) of timeline sample 0.
    /// Gaps stay silent; samples outside the window are dropped.
    Window {
        /// Stream time of timeline sample 0.
        origin: f64,
        /// First sample kept.
        start: i64,
        /// First sample not kept (the buffer may be cut shorter at EOF).
        end: i64,
    },
    /// By timestamp, keeping only what was decoded since the last
    /// [`PcmCollector::take`] (for meters that read a long input once).
    Stream {
        /// Stream time of timeline sample 0.
        origin: f64,
    },
}

/// Decodes one audio stream into interleaved stereo `f32` at 48 kHz.
pub struct PcmCollector {
    decoder: ff::decoder::Audio,
    graph: Option<ff::filter::Graph>,
    time_base: ff::Rational,
    placement: Placement,
    pcm: Vec<f32>,
    /// Timeline position of `pcm[0]` (stream placement).
    base: i64,
    /// Timeline position just after the last sample decoded so far.
    reached: i64,
}

impl PcmCollector {
    /// A collector for `stream`.
    pub fn new(stream: &ff::format::stream::Stream, placement: Placement) -> Result<Self> {
        let decoder = open_decoder(stream)?;
        Ok(PcmCollector {
            decoder,
            graph: None,
            time_base: stream.time_base(),
            placement,
            pcm: Vec::new(),
            base: 0,
            reached: i64::MIN,
        })
    }

    /// Whether every sample of the window has been decoded.
    pub fn complete(&self) -> bool {
        match self.placement {
            Placement::Append | Placement::Stream { .. } => false,
            Placement::Window { end, .. } => self.reached >= end,
        }
    }

    /// Decodes one packet.
    pub fn push(&mut self, packet: &ff::Packet) -> Result<()> {
        match self.decoder.send_packet(packet) {
            Ok(()) | Err(ff::Error::InvalidData) => {}
            Err(e) => return Err(e).av(|| "decoding audio".into()),
        }
        self.drain_decoder()
    }

    /// Flushes at end of input and returns the samples (for a window: from
    /// its start to the last sample decoded inside it, silent where the
    /// stream had none).
    pub fn finish(mut self) -> Result<Vec<f32>> {
        self.flush()?;
        if let Placement::Window { start, end, .. } = self.placement {
            // Up to the last sample decoded; a gap at the end stays out
            // (the caller pads to the length it needs).
            let reached = self.reached.clamp(start, end);
            self.pcm.resize(to_len(reached - start) * CHANNELS, 0.0);
        }
        Ok(self.pcm)
    }

    fn drain_decoder(&mut self) -> Result<()> {
        let mut decoded = ff::frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            if self.graph.is_none() {
                let chain = format!(
                    "aresample={SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=stereo"
                );
                self.graph = Some(super::filter_graph(
                    "abuffer",
                    &abuffer_args(&decoded, self.time_base),
                    "abuffersink",
                    &chain,
                )?);
            }
            if let Some(mut src) = self.graph.as_mut().and_then(|g| g.get("in")) {
                src.source().add(&decoded).av(|| "filtering audio".into())?;
            }
            self.drain_graph()?;
        }
        Ok(())
    }

    fn drain_graph(&mut self) -> Result<()> {
        loop {
            let mut frame = ff::frame::Audio::empty();
            if !super::pull_frame(self.graph.as_mut(), &mut frame) {
                return Ok(());
            }
            let samples = frame.samples();
            let data = &frame.plane::<f32>(0);
            // `plane` of packed audio covers every channel's samples.
            let data = &data[..(samples * CHANNELS).min(data.len())];
            self.place(frame.pts(), data);
        }
    }

    /// Stream placement: the samples decoded since the last call and the
    /// timeline position of the first.
    pub fn take(&mut self) -> (i64, Vec<f32>) {
        let pcm = std::mem::take(&mut self.pcm);
        let base = self.base;
        self.base += (pcm.len() / CHANNELS) as i64;
        (base, pcm)
    }

    /// Flushes the decoder at end of input (stream placement); what is left
    /// comes from [`PcmCollector::take`].
    pub fn flush(&mut self) -> Result<()> {
        let _ = self.decoder.send_eof();
        self.drain_decoder()?;
        if let Some(mut src) = self.graph.as_mut().and_then(|g| g.get("in")) {
            src.source()
                .flush()
                .av(|| "flushing the audio filter".into())?;
        }
        self.drain_graph()
    }

    fn place(&mut self, pts: Option<i64>, data: &[f32]) {
        let frames = (data.len() / CHANNELS) as i64;
        match self.placement {
            Placement::Append => {
                self.pcm.extend_from_slice(data);
            }
            Placement::Stream { origin } => {
                let pos = pts.map_or(self.reached.max(0), |p| {
                    p - (origin * f64::from(SAMPLE_RATE)).round() as i64
                });
                if self.reached == i64::MIN {
                    self.base = pos;
                    self.reached = pos;
                }
                // Fill gaps with silence, drop overlaps: the stream stays
                // continuous from `base`.
                let skip = to_len(self.reached - pos).min(frames as usize);
                let gap = to_len(pos - self.reached);
                self.pcm.resize(self.pcm.len() + gap * CHANNELS, 0.0);
                self.pcm.extend_from_slice(&data[skip * CHANNELS..]);
                self.reached = self.reached.max(pos + frames);
            }
            Placement::Window { origin, start, end } => {
                let Some(pts) = pts else { return };
                let pos = pts - (origin * f64::from(SAMPLE_RATE)).round() as i64;
                self.reached = self.reached.max(pos + frames);
                let from = pos.max(start);
                let to = (pos + frames).min(end);
                if to <= from {
                    return;
                }
                let needed = to_len(to - start) * CHANNELS;
                if self.pcm.len() < needed {
                    self.pcm.resize(needed, 0.0);
                }
                let src = to_len(from - pos) * CHANNELS;
                let dst = to_len(from - start) * CHANNELS;
                let n = to_len(to - from) * CHANNELS;
                self.pcm[dst..dst + n].copy_from_slice(&data[src..src + n]);
            }
        }
    }
}

fn to_len(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Decodes the first audio stream of a file (any format libav reads) to
/// PCM, e.g. a synthesised or pre-recorded voice.
pub fn decode_file(path: &str) -> Result<Vec<f32>> {
    let mut ictx = open_input(path)?;
    let stream = ictx
        .streams()
        .best(ff::media::Type::Audio)
        .ok_or_else(|| MediaError::Unsupported("no audio stream".into()))?;
    let index = stream.index();
    let mut collector = PcmCollector::new(&stream, Placement::Append).map_err(|e| match e {
        MediaError::Av { source, .. } => {
            MediaError::Unsupported(format!("unsupported audio format ({source})"))
        }
        other => other,
    })?;
    for (stream, packet) in ictx.packets() {
        if stream.index() == index {
            collector.push(&packet)?;
        }
    }
    collector.finish()
}

/// A filter graph over PCM: one `abuffer` source per name in `inputs`
/// (labelled `[name]` in `spec`), one sink labelled `[out]` delivering
/// packed float stereo 48 kHz.
pub fn mix_graph(inputs: &[String], spec: &str) -> Result<ff::filter::Graph> {
    let find = |name: &str| {
        ff::filter::find(name)
            .ok_or_else(|| MediaError::Unsupported(format!("libavfilter has no `{name}` filter")))
    };
    let mut graph = ff::filter::Graph::new();
    let args = pcm_abuffer_args();
    for name in inputs {
        graph
            .add(&find("abuffer")?, name, &args)
            .av(|| format!("creating the filter source {name}"))?;
    }
    graph
        .add(&find("abuffersink")?, "out", "")
        .av(|| "creating the audio filter sink".into())?;
    let spec = format!("{spec},aformat=sample_fmts=flt:channel_layouts=stereo[out]");
    {
        let mut parser = graph.input("out", 0).av(|| "linking the sink".into())?;
        for name in inputs {
            parser = parser
                .output(name, 0)
                .av(|| format!("linking the source {name}"))?;
        }
        parser
            .parse(&spec)
            .av(|| format!("building the filter `{spec}`"))?;
    }
    graph
        .validate()
        .av(|| format!("configuring the filter `{spec}`"))?;
    Ok(graph)
}

/// Feeds `pcm` into the graph source `name` in frames of `frame` samples,
/// the first with timestamp `first_pts` (in samples).
pub fn feed(
    graph: &mut ff::filter::Graph,
    name: &str,
    pcm: &[f32],
    frame: usize,
    first_pts: i64,
) -> Result<()> {
    let mut src = graph
        .get(name)
        .ok_or_else(|| MediaError::Unsupported(format!("no filter source {name}")))?;
    for (i, piece) in pcm.chunks(frame * CHANNELS).enumerate() {
        let samples = piece.len() / CHANNELS;
        let mut f = ff::frame::Audio::new(
            ff::format::Sample::F32(ff::format::sample::Type::Packed),
            samples,
            ff::ChannelLayout::STEREO,
        );
        f.set_rate(SAMPLE_RATE as u32);
        f.set_channels(CHANNELS as u16);
        f.plane_mut::<f32>(0)[..piece.len()].copy_from_slice(piece);
        f.set_pts(Some(first_pts + (i * frame) as i64));
        src.source()
            .add(&f)
            .av(|| format!("filtering audio ({name})"))?;
    }
    Ok(())
}

/// Ends the input of graph source `name`.
pub fn close(graph: &mut ff::filter::Graph, name: &str) -> Result<()> {
    let mut src = graph
        .get(name)
        .ok_or_else(|| MediaError::Unsupported(format!("no filter source {name}")))?;
    src.source()
        .flush()
        .av(|| format!("closing the filter input {name}"))
}

/// What the graph's `[out]` sink can deliver now (everything, once every
/// source is closed), as one buffer.
pub fn drain(graph: &mut ff::filter::Graph) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let mut sink = graph
        .get("out")
        .ok_or_else(|| MediaError::Unsupported("no filter sink".into()))?;
    let mut frame = ff::frame::Audio::empty();
    loop {
        match sink.sink().frame(&mut frame) {
            Ok(()) => {
                let n = frame.samples() * CHANNELS;
                let data = frame.plane::<f32>(0);
                out.extend_from_slice(&data[..n.min(data.len())]);
            }
            Err(ff::Error::Eof) | Err(ff::Error::Other { .. }) => return Ok(out),
            Err(e) => return Err(e).av(|| "reading the mixed audio".into()),
        }
    }
}

/// An AAC encoder fed with PCM in any amounts; packets carry timestamps in
/// samples (1/48000) from 0.
pub struct AacStream {
    encoder: ff::encoder::audio::Encoder,
    pending: Vec<f32>,
    next_pts: i64,
}

impl AacStream {
    /// Opens the encoder (see [`open_aac`]).
    pub fn new(bitrate: u64, global_header: bool) -> Result<Self> {
        Ok(AacStream {
            encoder: open_aac(bitrate, global_header)?,
            pending: Vec::new(),
            next_pts: 0,
        })
    }

    /// The opened encoder, for creating the muxer's stream.
    pub fn encoder(&self) -> &ff::encoder::audio::Encoder {
        &self.encoder
    }

    /// Encodes what fills whole encoder frames; packets go to `out`.
    pub fn push(
        &mut self,
        pcm: &[f32],
        out: &mut impl FnMut(ff::Packet) -> Result<()>,
    ) -> Result<()> {
        let step = self.frame_size() * CHANNELS;
        let mut input = pcm;
        // Complete the frame left over from the last call first.
        if !self.pending.is_empty() {
            let take = (step - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < step {
                return Ok(());
            }
            let frame = std::mem::take(&mut self.pending);
            self.send(&frame, out)?;
        }
        let mut frames = input.chunks_exact(step);
        for frame in frames.by_ref() {
            self.send(frame, out)?;
        }
        self.pending.extend_from_slice(frames.remainder());
        Ok(())
    }

    /// Encodes the remainder and flushes the encoder; returns the encoder
    /// (its parameters describe the stream for a muxer).
    pub fn finish(
        mut self,
        out: &mut impl FnMut(ff::Packet) -> Result<()>,
    ) -> Result<ff::encoder::audio::Encoder> {
        if !self.pending.is_empty() {
            let last = std::mem::take(&mut self.pending);
            self.send(&last, out)?;
        }
        self.encoder
            .send_eof()
            .av(|| "flushing the AAC encoder".into())?;
        self.receive(out)?;
        Ok(self.encoder)
    }

    fn frame_size(&self) -> usize {
        // Encoders without a fixed frame size take any; use AAC's.
        match self.encoder.frame_size() as usize {
            0 => 1024,
            n => n,
        }
    }

    fn send(
        &mut self,
        interleaved: &[f32],
        out: &mut impl FnMut(ff::Packet) -> Result<()>,
    ) -> Result<()> {
        let samples = interleaved.len() / CHANNELS;
        let mut frame = ff::frame::Audio::new(
            ff::format::Sample::F32(ff::format::sample::Type::Planar),
            samples,
            ff::ChannelLayout::STEREO,
        );
        frame.set_rate(SAMPLE_RATE as u32);
        frame.set_channels(CHANNELS as u16);
        for ch in 0..CHANNELS {
            let plane = frame.plane_mut::<f32>(ch);
            for (i, s) in plane.iter_mut().take(samples).enumerate() {
                *s = interleaved[i * CHANNELS + ch];
            }
        }
        frame.set_pts(Some(self.next_pts));
        self.next_pts += samples as i64;
        self.encoder
            .send_frame(&frame)
            .av(|| "encoding AAC".into())?;
        self.receive(out)
    }

    fn receive(&mut self, out: &mut impl FnMut(ff::Packet) -> Result<()>) -> Result<()> {
        let mut packet = ff::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            out(std::mem::replace(&mut packet, ff::Packet::empty()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_gets_every_sample_in_whole_frames_however_pcm_arrives() {
        let mut aac = AacStream::new(128_000, true).expect("encoder");
        let mut packets = 0usize;
        let mut count = |_: ff::Packet| -> Result<()> {
            packets += 1;
            Ok(())
        };
        // 3 x 1000 samples, then 2000: 5000 samples = 4 whole frames + 904.
        for piece in [1000usize, 1000, 1000, 2000] {
            aac.push(&vec![0.1; piece * CHANNELS], &mut count)
                .expect("push");
        }
        assert_eq!(aac.pending.len(), 904 * CHANNELS);
        aac.finish(&mut count).expect("finish");
        // 5 frames of input plus the encoder's priming frame.
        assert_eq!(packets, 6);
    }
}
