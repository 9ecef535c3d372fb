//! Video: decode once, orient and normalise, then scale and encode per
//! rendition.
//!
//! [`VideoDecoder`] runs on the demux thread. Decoded frames go through one
//! filter graph that applies the display rotation, converts to a constant
//! frame rate and to 8-bit 4:2:0, so every rendition worker receives the same
//! frames with the same timestamps. Workers share those frames by reference
//! ([`share_frame`]) and each owns its [`Scaler`] and [`H264Encoder`].

use super::{ff, AvContext, MediaError, Result};
use crate::cpu::{self, Stage};

/// Frames as they leave the shared graph: constant rate, yuv420p, rotated.
pub type Frame = ff::frame::Video;

/// Builds a video filter graph `buffer -> chain -> buffersink` for frames
/// shaped like `first`.
pub fn video_graph(
    first: &Frame,
    time_base: ff::Rational,
    chain: &str,
) -> Result<ff::filter::Graph> {
    let aspect = first.aspect_ratio();
    let aspect = if aspect.numerator() > 0 && aspect.denominator() > 0 {
        aspect
    } else {
        ff::Rational(1, 1)
    };
    let pix: ff::ffi::AVPixelFormat = first.format().into();
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        first.width(),
        first.height(),
        pix as i32,
        time_base.numerator(),
        time_base.denominator(),
        aspect.numerator(),
        aspect.denominator()
    );
    super::filter_graph("buffer", &args, "buffersink", chain)
}

/// The filters that turn a stored picture into the displayed one.
pub fn rotation_filter(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// Decodes the main video stream and normalises its frames.
pub struct VideoDecoder {
    decoder: ff::decoder::Video,
    graph: Option<ff::filter::Graph>,
    chain: String,
    time_base: ff::Rational,
    /// End of the last decoded frame (pts + duration), in stream ticks.
    end_pts: Option<i64>,
    /// One frame at the nominal rate, in stream ticks.
    nominal_duration: i64,
}

impl VideoDecoder {
    /// A decoder for `stream`, producing frames rotated by `rotation`
    /// degrees at `fps` frames per second. With `start_time`, the output
    /// starts exactly there (padding or trimming the first frames).
    pub fn new(
        stream: &ff::format::stream::Stream,
        rotation: u32,
        fps: ff::Rational,
        start_time: Option<f64>,
    ) -> Result<Self> {
        let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())
            .av(|| "reading the video stream's parameters".into())?;
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = ctx
            .decoder()
            .video()
            .av(|| "opening the video decoder".into())?;
        let start = start_time
            .map(|s| format!(":start_time={s:.6}"))
            .unwrap_or_default();
        let chain = format!(
            "{}fps=fps={}/{}{start},format=pix_fmts=yuv420p",
            rotation_filter(rotation),
            fps.numerator(),
            fps.denominator()
        );
        let tb = stream.time_base();
        let nominal_duration = (i64::from(tb.denominator()) * i64::from(fps.denominator()))
            / (i64::from(tb.numerator()) * i64::from(fps.numerator())).max(1);
        Ok(VideoDecoder {
            decoder,
            graph: None,
            chain,
            time_base: tb,
            end_pts: None,
            nominal_duration: nominal_duration.max(1),
        })
    }

    /// The time base of frames handed to `out`: one tick per output frame.
    pub fn output_time_base(&self, fps: ff::Rational) -> ff::Rational {
        ff::Rational(fps.denominator(), fps.numerator())
    }

    /// Decodes one packet; every finished frame goes to `out`.
    pub fn push<E: From<MediaError>>(
        &mut self,
        packet: &ff::Packet,
        out: &mut impl FnMut(Frame) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self.decoder.send_packet(packet) {
            Ok(()) => {}
            // A damaged packet: the decoder conceals it; keep going.
            Err(ff::Error::InvalidData) => return Ok(()),
            Err(e) => return Err(e).av(|| "decoding video".into()).map_err(E::from),
        }
        self.drain(out)
    }

    /// Flushes the decoder and the filter graph at end of input.
    pub fn finish<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(Frame) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let _ = self.decoder.send_eof();
        self.drain(out)?;
        // Close the graph at the end of the last frame (not at its start, as a
        // plain flush would), so the frame-rate filter keeps the last frame.
        let end = self.end_pts;
        if let Some(graph) = self.graph.as_mut() {
            if let Some(mut src) = graph.get("in") {
                match end {
                    Some(end) => src.source().close(end),
                    None => src.source().flush(),
                }
                .av(|| "flushing the video filter".into())?;
            }
        }
        self.pull(out)
    }

    fn drain<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(Frame) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut decoded = Frame::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            if let Some(ts) = ts {
                // SAFETY: plain field of the frame we own.
                let duration = unsafe { (*decoded.as_ptr()).pkt_duration };
                let duration = if duration > 0 {
                    duration
                } else {
                    self.nominal_duration
                };
                self.end_pts = Some(self.end_pts.map_or(ts + duration, |e| e.max(ts + duration)));
            }
            if self.graph.is_none() {
                self.graph = Some(video_graph(&decoded, self.time_base, &self.chain)?);
            }
            if let Some(graph) = self.graph.as_mut() {
                if let Some(mut src) = graph.get("in") {
                    cpu::time("", Stage::Filter, || src.source().add(&decoded))
                        .av(|| "filtering a video frame".into())?;
                }
            }
            self.pull(out)?;
        }
        Ok(())
    }

    fn pull<E: From<MediaError>>(
        &mut self,
        out: &mut impl FnMut(Frame) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let Some(graph) = self.graph.as_mut() else {
            return Ok(());
        };
        loop {
            let mut frame = Frame::empty();
            if !cpu::time("", Stage::Filter, || {
                super::pull_frame(Some(&mut *graph), &mut frame)
            }) {
                return Ok(());
            }
            out(frame)?;
        }
    }
}

/// A new reference to the same picture (no pixel copy): how one decoded
/// frame reaches every rendition worker.
pub fn share_frame(frame: &Frame) -> Result<Frame> {
    // SAFETY: av_frame_clone makes a new AVFrame referencing the same
    // refcounted buffers; workers only read the pixels (scalers and x264
    // copy them), and each worker owns its own AVFrame struct.
    let ptr = unsafe { ff::ffi::av_frame_clone(frame.as_ptr()) };
    if ptr.is_null() {
        return Err(MediaError::Unsupported(
            "out of memory sharing a frame".into(),
        ));
    }
    Ok(unsafe { Frame::wrap(ptr) })
}

/// Resizes frames to one size, bicubic.
///
/// The scaled pictures come from a small pool and are handed out by
/// reference: a picture is written again once nobody else holds it (an
/// encoder copies what it is sent; a cascade child drops its reference once
/// it has scaled it). A run therefore neither allocates nor faults in a new
/// picture per frame, which cost about 2% of a transcode's CPU. Not `Send`:
/// create it in the thread that uses it.
pub struct Scaler {
    context: Option<ff::software::scaling::Context>,
    width: u32,
    height: u32,
    pool: Vec<Frame>,
}

/// Pictures a [`Scaler`] keeps for reuse; beyond that, a picture still held
/// elsewhere is replaced by a new one that is not kept.
const SCALER_POOL: usize = 16;

impl Scaler {
    /// A scaler to `width`x`height` yuv420p (created on first use).
    pub fn new(width: u32, height: u32) -> Self {
        Scaler {
            context: None,
            width,
            height,
            pool: Vec::new(),
        }
    }

    /// The frame at the target size: the input itself when it already fits.
    pub fn scale(&mut self, input: Frame) -> Result<Frame> {
        if input.width() == self.width && input.height() == self.height {
            return Ok(input);
        }
        let (width, height) = (self.width, self.height);
        let context = match self.context.as_mut() {
            Some(context) => context,
            None => self.context.insert(
                ff::software::scaling::Context::get(
                    input.format(),
                    input.width(),
                    input.height(),
                    ff::format::Pixel::YUV420P,
                    width,
                    height,
                    ff::software::scaling::Flags::BICUBIC,
                )
                .av(|| format!("creating a scaler to {width}x{height}"))?,
            ),
        };
        let free = self
            .pool
            .iter_mut()
            // SAFETY: reads the reference counts of a frame we own.
            .position(|f| unsafe { ff::ffi::av_frame_is_writable(f.as_mut_ptr()) } != 0);
        let picture = || Frame::new(ff::format::Pixel::YUV420P, width, height);
        let mut spare;
        let output = match free {
            Some(i) => &mut self.pool[i],
            None if self.pool.len() < SCALER_POOL => {
                self.pool.push(picture());
                let last = self.pool.len() - 1;
                &mut self.pool[last]
            }
            None => {
                spare = picture();
                &mut spare
            }
        };
        context
            .run(&input, output)
            .av(|| format!("scaling to {width}x{height}"))?;
        output.set_pts(input.pts());
        share_frame(output)
    }
}

/// Settings of one H.264 encoder.
#[derive(Debug, Clone)]
pub struct H264Settings {
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Target bitrate, bits per second.
    pub bitrate: u64,
    /// x264 preset, e.g. `veryfast`.
    pub preset: String,
    /// Frame rate.
    pub fps: ff::Rational,
    /// Longest distance between forced IDR frames, in frames.
    pub keyint: u32,
    /// x264 threads for this encoder.
    pub threads: usize,
    /// Put SPS/PPS in extradata (MP4) rather than in-band (MPEG-TS).
    pub global_header: bool,
}

/// Encoder time base: MPEG-TS ticks, exact for every common frame rate.
pub const VIDEO_TIME_BASE: ff::Rational = ff::Rational(1, 90_000);

/// CPU cores a run may use: `requested`, or every core when it is 0.
pub fn cores(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// x264 threads for an encoder that has `cores` to itself (a share of the
/// machine, possibly fractional): one when it has at most one core, else
/// frame threads at 1.5x its cores, as x264 itself would pick, so its
/// threads do not wait on each other with cores idle; at most 16.
pub fn encoder_threads(cores: f64) -> usize {
    if cores <= 1.0 {
        1
    } else {
        ((cores * 1.5).round() as usize).clamp(1, 16)
    }
}

/// Frame rate of the output: the source's average rate, snapped to a
/// standard rate when within 1%, capped at `max_fps`.
pub fn output_frame_rate(avg: (i32, i32), max_fps: u32) -> ff::Rational {
    const STANDARD: &[(i32, i32)] = &[
        (24000, 1001),
        (24, 1),
        (25, 1),
        (30000, 1001),
        (30, 1),
        (48, 1),
        (50, 1),
        (60000, 1001),
        (60, 1),
    ];
    let fps = if avg.1 > 0 {
        f64::from(avg.0) / f64::from(avg.1)
    } else {
        0.0
    };
    if !(fps.is_finite() && fps > 0.0) {
        return ff::Rational(25, 1);
    }
    if fps > f64::from(max_fps) + 0.01 {
        return ff::Rational(max_fps.max(1) as i32, 1);
    }
    let closest = STANDARD.iter().min_by(|a, b| {
        let da = (fps / (f64::from(a.0) / f64::from(a.1)) - 1.0).abs();
        let db = (fps / (f64::from(b.0) / f64::from(b.1)) - 1.0).abs();
        da.total_cmp(&db)
    });
    if let Some(&(n, d)) = closest {
        if (fps / (f64::from(n) / f64::from(d)) - 1.0).abs() < 0.005 {
            return ff::Rational(n, d);
        }
    }
    ff::Rational((fps.round() as i32).max(1), 1)
}

/// Opens libx264 with ABR rate control, a VBV cap, no scene-cut keyframes
/// and IDR frames exactly where the caller marks `I` frames.
pub fn open_h264(s: &H264Settings) -> Result<ff::encoder::video::Encoder> {
    let codec = ff::encoder::find_by_name("libx264")
        .ok_or_else(|| MediaError::Unsupported("libavcodec was built without libx264".into()))?;
    let mut ctx = ff::codec::context::Context::new_with_codec(codec);
    ctx.set_threading(ff::threading::Config {
        kind: ff::threading::Type::Frame,
        count: s.threads.max(1),
        ..Default::default()
    });
    let mut enc = ctx
        .encoder()
        .video()
        .av(|| "creating the H.264 encoder".into())?;
    enc.set_width(s.width);
    enc.set_height(s.height);
    enc.set_format(ff::format::Pixel::YUV420P);
    enc.set_time_base(VIDEO_TIME_BASE);
    enc.set_frame_rate(Some(s.fps));
    enc.set_bit_rate(s.bitrate as usize);
    enc.set_max_bit_rate(vbv_maxrate(s.bitrate) as usize);
    enc.set_gop(s.keyint);
    if s.global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    // SAFETY: plain field on the encoder context, set before opening.
    unsafe { (*enc.as_mut_ptr()).rc_buffer_size = vbv_bufsize(s.bitrate) as i32 };
    let mut options = ff::Dictionary::new();
    options.set("preset", &s.preset);
    options.set("profile", "high");
    options.set("forced-idr", "1");
    options.set(
        "x264-params",
        &format!(
            "scenecut=0:open-gop=0:min-keyint={}:keyint={}",
            s.keyint, s.keyint
        ),
    );
    enc.open_with(options).av(|| {
        format!(
            "opening libx264 at {}x{} {} kb/s preset {}",
            s.width,
            s.height,
            s.bitrate / 1000,
            s.preset
        )
    })
}

/// VBV peak rate for a target bitrate (the benchmark's ffmpeg peer uses
/// the same: `-maxrate 1.07×`).
pub fn vbv_maxrate(bitrate: u64) -> u64 {
    bitrate * 107 / 100
}

/// VBV buffer for a target bitrate (`-bufsize 1.5×`).
pub fn vbv_bufsize(bitrate: u64) -> u64 {
    bitrate * 3 / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_snap_to_standard_values() {
        assert_eq!(
            output_frame_rate((2997, 100), 60),
            ff::Rational(30000, 1001)
        );
        assert_eq!(output_frame_rate((30, 1), 60), ff::Rational(30, 1));
        assert_eq!(output_frame_rate((25, 1), 60), ff::Rational(25, 1));
        assert_eq!(
            output_frame_rate((24000, 1001), 60),
            ff::Rational(24000, 1001)
        );
        assert_eq!(output_frame_rate((2999, 100), 60), ff::Rational(30, 1));
        assert_eq!(output_frame_rate((120, 1), 60), ff::Rational(60, 1));
        assert_eq!(output_frame_rate((0, 0), 60), ff::Rational(25, 1));
        assert_eq!(output_frame_rate((1500, 100), 60), ff::Rational(15, 1));
    }

    #[test]
    fn encoders_get_one_and_a_half_threads_per_core() {
        assert_eq!(encoder_threads(0.3), 1);
        assert_eq!(encoder_threads(1.0), 1);
        assert_eq!(encoder_threads(1.2), 2);
        assert_eq!(encoder_threads(2.0), 3);
        assert_eq!(encoder_threads(8.0), 12);
        assert_eq!(encoder_threads(64.0), 16);
    }

    #[test]
    fn zero_cores_means_every_core() {
        assert_eq!(cores(3), 3);
        assert!(cores(0) >= 1);
    }
}
