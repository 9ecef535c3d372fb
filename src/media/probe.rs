//! Facts about an input: what `vidpipe probe` prints and what every job
//! plans from.

use super::{ff, open_input, rational_f64, MediaError, Result};
use serde::Serialize;

/// What an input contains.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaInfo {
    /// The input as given (path or URL).
    pub input: String,
    /// Container format name(s) as libav reports them.
    pub container: String,
    /// Duration in seconds (0 if unknown).
    pub duration: f64,
    /// Overall bitrate in bits per second, if known.
    pub bit_rate: Option<u64>,
    /// The main video stream, if any.
    pub video: Option<VideoInfo>,
    /// Every audio stream.
    pub audio: Vec<AudioInfo>,
}

/// The main video stream.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VideoInfo {
    /// Stream index in the container.
    pub index: usize,
    /// Codec name, e.g. `h264`.
    pub codec: String,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Clockwise rotation to apply for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Width as displayed (after rotation).
    pub display_width: u32,
    /// Height as displayed (after rotation).
    pub display_height: u32,
    /// Average frame rate in frames per second.
    pub fps: f64,
    /// Average frame rate as a fraction (numerator, denominator).
    pub fps_fraction: (i32, i32),
    /// Pixel format name.
    pub pix_fmt: String,
    /// Stream start time in seconds.
    pub start_time: f64,
}

/// One audio stream.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AudioInfo {
    /// Stream index in the container.
    pub index: usize,
    /// Codec name, e.g. `aac`.
    pub codec: String,
    /// Channel count.
    pub channels: u16,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Language tag from the container; `und` when it declares none.
    pub language: String,
}

/// The language tag of a stream that declares none.
pub const UNDETERMINED: &str = "und";

/// Probes `input` (a path or URL).
pub fn probe(input: &str) -> Result<MediaInfo> {
    let ictx = open_input(input)?;
    Ok(describe(input, &ictx))
}

/// Describes an already opened input.
pub fn describe(input: &str, ictx: &ff::format::context::Input) -> MediaInfo {
    let duration = if ictx.duration() > 0 {
        ictx.duration() as f64 / f64::from(ff::ffi::AV_TIME_BASE)
    } else {
        0.0
    };
    let video = ictx
        .streams()
        .best(ff::media::Type::Video)
        .and_then(|s| video_info(&s));
    let audio = ictx
        .streams()
        .filter(|s| s.parameters().medium() == ff::media::Type::Audio)
        .filter_map(|s| audio_info(&s))
        .collect();
    let bit_rate = unsafe { (*ictx.as_ptr()).bit_rate };
    MediaInfo {
        input: input.to_string(),
        container: ictx.format().name().to_string(),
        duration,
        bit_rate: (bit_rate > 0).then_some(bit_rate as u64),
        video,
        audio,
    }
}

fn video_info(stream: &ff::format::stream::Stream) -> Option<VideoInfo> {
    let params = stream.parameters();
    let (width, height, format) = unsafe {
        let p = params.as_ptr();
        ((*p).width, (*p).height, (*p).format)
    };
    if width <= 0 || height <= 0 {
        return None;
    }
    let (width, height) = (width as u32, height as u32);
    let rotation = rotation_of(stream);
    let (display_width, display_height) = if rotation % 180 == 90 {
        (height, width)
    } else {
        (width, height)
    };
    let mut rate = stream.avg_frame_rate();
    if rate.numerator() <= 0 || rate.denominator() <= 0 {
        rate = stream.rate();
    }
    let pix = ff::format::Pixel::from(unsafe {
        std::mem::transmute::<i32, ff::ffi::AVPixelFormat>(format)
    });
    let start = stream.start_time();
    let start_time = if start == ff::ffi::AV_NOPTS_VALUE {
        0.0
    } else {
        start as f64 * rational_f64(stream.time_base())
    };
    Some(VideoInfo {
        index: stream.index(),
        codec: params.id().name().to_string(),
        width,
        height,
        rotation,
        display_width,
        display_height,
        fps: rational_f64(rate),
        fps_fraction: (rate.numerator(), rate.denominator()),
        pix_fmt: pix
            .descriptor()
            .map(|d| d.name().to_string())
            .unwrap_or_default(),
        start_time,
    })
}

fn audio_info(stream: &ff::format::stream::Stream) -> Option<AudioInfo> {
    let params = stream.parameters();
    let (channels, sample_rate) = unsafe {
        let p = params.as_ptr();
        ((*p).ch_layout.nb_channels, (*p).sample_rate)
    };
    if channels <= 0 {
        return None;
    }
    let language = stream
        .metadata()
        .get("language")
        .filter(|l| !l.trim().is_empty())
        .map_or_else(|| UNDETERMINED.to_string(), |l| l.trim().to_string());
    Some(AudioInfo {
        index: stream.index(),
        codec: params.id().name().to_string(),
        channels: channels as u16,
        sample_rate: sample_rate.max(0) as u32,
        language,
    })
}

/// Clockwise rotation (0/90/180/270) that the stream's display matrix asks
/// for, the way players apply it.
fn rotation_of(stream: &ff::format::stream::Stream) -> u32 {
    for side in stream.side_data() {
        if side.kind() == ff::codec::packet::side_data::Type::DisplayMatrix {
            let data = side.data();
            if data.len() < 36 {
                continue;
            }
            // SAFETY: the display matrix is nine native-endian i32 values; we
            // checked the length, and av_display_rotation_get only reads.
            let ccw = unsafe { ff::ffi::av_display_rotation_get(data.as_ptr() as *const i32) };
            if ccw.is_nan() {
                return 0;
            }
            let clockwise = (-ccw).rem_euclid(360.0);
            return ((clockwise / 90.0).round() as u32 % 4) * 90;
        }
    }
    0
}

/// Checks that an input can be transcoded, with a reason a user can act on.
pub fn require_video(info: &MediaInfo) -> Result<&VideoInfo> {
    let video = info.video.as_ref().ok_or_else(|| {
        MediaError::Unsupported("no video stream (is this an audio-only or text file?)".into())
    })?;
    if video.fps <= 0.0 {
        return Err(MediaError::Unsupported(
            "the video stream has no usable frame rate".into(),
        ));
    }
    Ok(video)
}
