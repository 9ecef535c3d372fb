//! One JPEG frame of an input, as displayed (rotation applied).

use super::video::{rotation_filter, video_graph, Frame};
use super::{ff, open_input, AvContext, MediaError, Result};

/// Largest thumbnail width; taller pictures keep their aspect ratio.
const MAX_WIDTH: u32 = 1280;

/// Decodes the frame at `at_seconds` (or the last one before the end) of
/// `input` and returns it as JPEG bytes.
pub fn thumbnail_jpeg(input: &str, rotation: u32, at_seconds: f64) -> Result<Vec<u8>> {
    let mut ictx = open_input(input)?;
    let stream = ictx
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| MediaError::Unsupported("no video stream".into()))?;
    let index = stream.index();
    let time_base = stream.time_base();
    let start = if stream.start_time() == ff::ffi::AV_NOPTS_VALUE {
        0
    } else {
        stream.start_time()
    };
    let mut decoder = ff::codec::context::Context::from_parameters(stream.parameters())
        .av(|| "reading the video stream's parameters".into())?
        .decoder()
        .video()
        .av(|| "opening the video decoder".into())?;
    let target = start + (at_seconds / super::rational_f64(time_base)) as i64;
    if at_seconds > 0.0 {
        let ts = (at_seconds * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        // Not every input can seek (servers without ranges, pipes): then
        // decode from the start of a fresh connection.
        if ictx.seek(ts, ..ts).is_err() {
            ictx = open_input(input)?;
        }
    }
    let mut picked: Option<Frame> = None;
    let mut decoded = Frame::empty();
    let mut take = |decoder: &mut ff::decoder::Video, picked: &mut Option<Frame>| -> bool {
        while decoder.receive_frame(&mut decoded).is_ok() {
            let reached = decoded.timestamp().is_some_and(|t| t >= target);
            *picked = Some(std::mem::replace(&mut decoded, Frame::empty()));
            if reached {
                return true;
            }
        }
        false
    };
    let mut done = false;
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_ok() && take(&mut decoder, &mut picked) {
            done = true;
            break;
        }
    }
    if !done {
        let _ = decoder.send_eof();
        take(&mut decoder, &mut picked);
    }
    let frame =
        picked.ok_or_else(|| MediaError::Unsupported("no video frame could be decoded".into()))?;
    encode_jpeg(&frame, time_base, rotation)
}

fn encode_jpeg(frame: &Frame, time_base: ff::Rational, rotation: u32) -> Result<Vec<u8>> {
    let chain = format!(
        "{}scale=w='min({MAX_WIDTH},iw)':h=-2,format=pix_fmts=yuvj420p",
        rotation_filter(rotation)
    );
    let mut graph = video_graph(frame, time_base, &chain)?;
    let mut shaped = Frame::empty();
    if let Some(mut src) = graph.get("in") {
        src.source()
            .add(frame)
            .av(|| "filtering the thumbnail".into())?;
        src.source()
            .flush()
            .av(|| "filtering the thumbnail".into())?;
    }
    if let Some(mut sink) = graph.get("out") {
        sink.sink()
            .frame(&mut shaped)
            .av(|| "filtering the thumbnail".into())?;
    }
    let codec = ff::encoder::find(ff::codec::Id::MJPEG)
        .ok_or_else(|| MediaError::Unsupported("libavcodec has no JPEG encoder".into()))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .av(|| "creating the JPEG encoder".into())?;
    enc.set_width(shaped.width());
    enc.set_height(shaped.height());
    enc.set_format(ff::format::Pixel::YUVJ420P);
    enc.set_time_base(ff::Rational(1, 25));
    enc.set_flags(ff::codec::Flags::QSCALE);
    // Quality 3 on libav's 2 (best) to 31 scale.
    let quality = 3 * ff::ffi::FF_QP2LAMBDA;
    enc.set_global_quality(quality);
    let mut encoder = enc.open().av(|| "opening the JPEG encoder".into())?;
    // SAFETY: plain field of a frame we own.
    unsafe { (*shaped.as_mut_ptr()).quality = quality };
    shaped.set_pts(Some(0));
    encoder
        .send_frame(&shaped)
        .av(|| "encoding the thumbnail".into())?;
    encoder.send_eof().av(|| "encoding the thumbnail".into())?;
    let mut packet = ff::Packet::empty();
    encoder
        .receive_packet(&mut packet)
        .av(|| "encoding the thumbnail".into())?;
    Ok(packet.data().map(<[u8]>::to_vec).unwrap_or_default())
}
