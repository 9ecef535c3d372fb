//! One JPEG of a decoded frame, for the thumbnail.
//!
//! The frame comes from the main decode pass, already rotated for display,
//! so the input is decoded only once.

use super::video::{share_frame, video_graph, Frame};
use super::{ff, AvContext, MediaError, Result};

/// Largest thumbnail width; taller pictures keep their aspect ratio.
const MAX_WIDTH: u32 = 1280;

/// Encodes `frame` (timestamps in `time_base`) as a JPEG at most
/// 1280 pixels wide.
pub fn jpeg(frame: &Frame, time_base: ff::Rational) -> Result<Vec<u8>> {
    let chain = format!("scale=w='min({MAX_WIDTH},iw)':h=-2,format=pix_fmts=yuvj420p");
    let mut graph = video_graph(frame, time_base, &chain)?;
    let mut shaped = Frame::empty();
    // The filter source takes the references of what it is given: give it
    // its own reference so the caller's frame stays intact.
    let input = share_frame(frame)?;
    if let Some(mut src) = graph.get("in") {
        src.source()
            .add(&input)
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
