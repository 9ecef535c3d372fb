//! HLS playlist text (RFC 8216 and Apple's HLS authoring specification).
//!
//! Pure functions from measured segments to playlist text: no I/O, so the
//! output is snapshot-tested. Bandwidths are always measured from the bytes
//! the segments really carry, never copied from the encoder's target.

use crate::media::mux::SegmentFormat;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One written segment, as measured after muxing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// File name relative to the playlist.
    pub uri: String,
    /// Duration in seconds.
    pub duration: f64,
    /// Size of the segment file in bytes.
    pub bytes: u64,
    /// Byte range of the segment's IDR frame (offset, length), for video.
    pub iframe: Option<(u64, u64)>,
}

/// `EXT-X-VERSION` needed by our playlists: byte ranges and I-FRAMES-ONLY
/// need 4, `EXT-X-MAP` in media playlists needs 6; we use 7 for fMP4 as
/// Apple's tools do.
fn version(format: SegmentFormat) -> u8 {
    match format {
        SegmentFormat::Ts => 4,
        SegmentFormat::Fmp4 => 7,
    }
}

/// Target duration: the largest EXTINF rounded to the nearest integer.
pub fn target_duration(segments: &[SegmentInfo]) -> u64 {
    segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

fn header(out: &mut String, format: SegmentFormat, target: u64) {
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:{}", version(format));
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:0");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
}

fn map_line(out: &mut String, format: SegmentFormat) {
    if let Some(init) = format.init_segment() {
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{init}\"");
    }
}

/// A VOD media playlist listing every segment.
pub fn media_playlist(format: SegmentFormat, segments: &[SegmentInfo]) -> String {
    let mut out = String::new();
    header(&mut out, format, target_duration(segments));
    map_line(&mut out, format);
    for s in segments {
        let _ = writeln!(out, "#EXTINF:{:.6},", s.duration);
        let _ = writeln!(out, "{}", s.uri);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// An I-frame playlist: one byte range per segment, covering its IDR frame.
pub fn iframe_playlist(format: SegmentFormat, segments: &[SegmentInfo]) -> String {
    let mut out = String::new();
    header(&mut out, format, target_duration(segments));
    out.push_str("#EXT-X-I-FRAMES-ONLY\n");
    map_line(&mut out, format);
    for s in segments {
        if let Some((offset, len)) = s.iframe {
            let _ = writeln!(out, "#EXTINF:{:.6},", s.duration);
            let _ = writeln!(out, "#EXT-X-BYTERANGE:{len}@{offset}");
            let _ = writeln!(out, "{}", s.uri);
        }
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// Peak and average bits per second of a stream made of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Highest per-segment bitrate (RFC 8216 `BANDWIDTH`).
    pub peak: u64,
    /// Total bits over total duration (`AVERAGE-BANDWIDTH`).
    pub average: u64,
}

impl Bandwidth {
    /// Measures a variant: video segments plus, segment by segment, the
    /// audio rendition played with it. `bytes_of` picks what counts (whole
    /// segments, or only I-frames).
    pub fn measure(
        video: &[SegmentInfo],
        audio: &[SegmentInfo],
        bytes_of: impl Fn(&SegmentInfo) -> u64,
    ) -> Bandwidth {
        let mut peak = 0f64;
        let mut total_bits = 0f64;
        let mut total_secs = 0f64;
        for (i, v) in video.iter().enumerate() {
            let audio_bytes = audio.get(i).map_or(0, &bytes_of);
            let bits = (bytes_of(v) + audio_bytes) as f64 * 8.0;
            if v.duration > 0.0 {
                peak = peak.max(bits / v.duration);
            }
            total_bits += bits;
            total_secs += v.duration;
        }
        // Audio segments past the end of the video still have to be fetched.
        for a in audio.iter().skip(video.len()) {
            total_bits += bytes_of(a) as f64 * 8.0;
        }
        let average = if total_secs > 0.0 {
            total_bits / total_secs
        } else {
            0.0
        };
        Bandwidth {
            peak: peak.ceil() as u64,
            average: average.ceil() as u64,
        }
    }
}

/// A video variant as listed in the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// URI of the media playlist, relative to the master.
    pub uri: String,
    /// URI of the I-frame playlist.
    pub iframe_uri: String,
    /// Measured bandwidth of video + audio.
    pub bandwidth: Bandwidth,
    /// Measured bandwidth of the I-frame playlist.
    pub iframe_bandwidth: Bandwidth,
    /// RFC 6381 codec of the video, e.g. `avc1.64001f`.
    pub video_codec: String,
    /// Encoded width.
    pub width: u32,
    /// Encoded height.
    pub height: u32,
    /// Frames per second.
    pub frame_rate: f64,
}

/// The audio rendition shared by every variant.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioGroup {
    /// URI of its media playlist.
    pub uri: String,
    /// RFC 6381 codec, e.g. `mp4a.40.2`.
    pub codec: String,
    /// Channel count.
    pub channels: u16,
    /// BCP-47 language (`und` when unknown); NAME is derived from it.
    pub language: String,
}

/// The NAME of the audio rendition in `language`: the language's English
/// name, or a neutral name when the language is undetermined.
pub fn audio_name(language: &str) -> String {
    if language.eq_ignore_ascii_case(crate::media::probe::UNDETERMINED) {
        "Original audio".to_string()
    } else {
        crate::language::language_name(language)
    }
}

/// Group id used for the audio rendition.
pub const AUDIO_GROUP: &str = "audio";

/// The master playlist: variants in the order given, the audio group, and
/// one I-frame stream per variant.
pub fn master_playlist(
    format: SegmentFormat,
    variants: &[Variant],
    audio: Option<&AudioGroup>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:{}", version(format));
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if let Some(a) = audio {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",LANGUAGE=\"{}\",NAME=\"{}\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}\"",
            a.language,
            audio_name(&a.language),
            a.channels,
            a.uri
        );
    }
    out.push('\n');
    for v in variants {
        let codecs = match audio {
            Some(a) => format!("{},{}", v.video_codec, a.codec),
            None => v.video_codec.clone(),
        };
        let audio_attr = if audio.is_some() {
            format!(",AUDIO=\"{AUDIO_GROUP}\"")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{codecs}\",RESOLUTION={}x{},FRAME-RATE={:.3}{audio_attr},CLOSED-CAPTIONS=NONE",
            v.bandwidth.peak, v.bandwidth.average, v.width, v.height, v.frame_rate
        );
        let _ = writeln!(out, "{}", v.uri);
    }
    out.push('\n');
    for v in variants {
        let _ = writeln!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},URI=\"{}\"",
            v.iframe_bandwidth.peak,
            v.iframe_bandwidth.average,
            v.video_codec,
            v.width,
            v.height,
            v.iframe_uri
        );
    }
    out
}

/// The group id of the subtitle renditions `vidpipe captions --master`
/// attaches.
pub const SUBTITLE_GROUP: &str = "subs";

/// The `EXT-X-MEDIA` lines of the subtitle group in `master`, as written.
pub fn subtitle_group(master: &str) -> Vec<String> {
    master
        .lines()
        .filter(|l| is_subtitle_media(l))
        .map(str::to_string)
        .collect()
}

fn is_subtitle_media(line: &str) -> bool {
    line.starts_with("#EXT-X-MEDIA:")
        && line.contains("TYPE=SUBTITLES")
        && line.contains(&format!("GROUP-ID=\"{SUBTITLE_GROUP}\""))
}

/// `master` with its subtitle group replaced by `media_lines` (the
/// `EXT-X-MEDIA` lines, after any other media) and every variant stream
/// pointing at the group; no lines remove the group. Applying it to its own
/// output changes nothing.
pub fn with_subtitle_group(master: &str, media_lines: &[String]) -> Result<String, String> {
    if !master.trim_start_matches('\u{FEFF}').starts_with("#EXTM3U") {
        return Err("not an HLS playlist: it does not start with #EXTM3U".into());
    }
    let lines: Vec<&str> = master.lines().filter(|l| !is_subtitle_media(l)).collect();
    if !lines.iter().any(|l| l.starts_with("#EXT-X-STREAM-INF:")) {
        return Err("not a master playlist: it has no #EXT-X-STREAM-INF variant".into());
    }
    let insert_at = lines
        .iter()
        .rposition(|l| l.starts_with("#EXT-X-MEDIA:"))
        .map(|i| i + 1)
        .or_else(|| {
            lines
                .iter()
                .position(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        })
        .unwrap_or(lines.len());
    let grouped = !media_lines.is_empty();
    let mut out = String::with_capacity(master.len() + media_lines.len() * 160);
    for (i, line) in lines.iter().enumerate() {
        if i == insert_at {
            for media in media_lines {
                let _ = writeln!(out, "{media}");
            }
        }
        match line.strip_prefix("#EXT-X-STREAM-INF:") {
            Some(attributes) => {
                let _ = writeln!(
                    out,
                    "#EXT-X-STREAM-INF:{}",
                    with_subtitles(attributes, grouped)
                );
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    Ok(out)
}

/// An attribute list with `SUBTITLES="subs"` set (replacing any value), or
/// removed when there is no group.
fn with_subtitles(attributes: &str, grouped: bool) -> String {
    let mut parts: Vec<String> = split_attributes(attributes)
        .into_iter()
        .filter(|a| !a.starts_with("SUBTITLES="))
        .map(str::to_string)
        .collect();
    if grouped {
        parts.push(format!("SUBTITLES=\"{SUBTITLE_GROUP}\""));
    }
    parts.join(",")
}

/// Splits an attribute list at the commas outside quoted strings.
fn split_attributes(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(durations: &[f64], bytes: u64) -> Vec<SegmentInfo> {
        durations
            .iter()
            .enumerate()
            .map(|(i, &d)| SegmentInfo {
                uri: format!("seg_{i:05}.ts"),
                duration: d,
                bytes: bytes * (i as u64 + 1),
                iframe: Some((0, bytes / 4)),
            })
            .collect()
    }

    #[test]
    fn target_duration_covers_every_rounded_extinf() {
        let s = segments(&[6.006, 6.006, 6.5, 1.2], 1000);
        assert_eq!(target_duration(&s), 7);
        let s = segments(&[6.006, 6.49], 1000);
        assert_eq!(target_duration(&s), 6);
    }

    #[test]
    fn bandwidth_is_peak_and_average_of_video_plus_audio() {
        let video = segments(&[2.0, 2.0], 1000); // 1000 and 2000 bytes
        let audio = segments(&[2.0, 2.0], 100); // 100 and 200 bytes
        let bw = Bandwidth::measure(&video, &audio, |s| s.bytes);
        assert_eq!(bw.peak, 2200 * 8 / 2);
        assert_eq!(bw.average, 3300 * 8 / 4);
    }

    #[test]
    fn media_playlist_snapshot() {
        let s = segments(&[6.0, 6.0, 2.5], 50_000);
        insta::assert_snapshot!(media_playlist(SegmentFormat::Ts, &s));
    }

    #[test]
    fn fmp4_iframe_playlist_snapshot() {
        let s = segments(&[6.006, 3.2], 50_000);
        insta::assert_snapshot!(iframe_playlist(SegmentFormat::Fmp4, &s));
    }

    #[test]
    fn master_playlist_snapshot() {
        let video = segments(&[6.0, 4.0], 400_000);
        let audio = segments(&[6.0, 4.0], 20_000);
        let variant = |name: &str, w, h, codec: &str| Variant {
            uri: format!("{name}/index.m3u8"),
            iframe_uri: format!("{name}/iframes.m3u8"),
            bandwidth: Bandwidth::measure(&video, &audio, |s| s.bytes),
            iframe_bandwidth: Bandwidth::measure(&video, &[], |s| s.iframe.map_or(0, |r| r.1)),
            video_codec: codec.into(),
            width: w,
            height: h,
            frame_rate: 29.97,
        };
        let audio_group = AudioGroup {
            uri: "audio/index.m3u8".into(),
            codec: "mp4a.40.2".into(),
            channels: 2,
            language: "en".into(),
        };
        insta::assert_snapshot!(master_playlist(
            SegmentFormat::Ts,
            &[
                variant("720p", 1280, 720, "avc1.64001f"),
                variant("360p", 640, 360, "avc1.64001e")
            ],
            Some(&audio_group)
        ));
    }

    /// One 240p variant of a single 6 s segment.
    fn small_variant() -> Variant {
        let video = segments(&[6.0], 1000);
        Variant {
            uri: "240p/index.m3u8".into(),
            iframe_uri: "240p/iframes.m3u8".into(),
            bandwidth: Bandwidth::measure(&video, &[], |s| s.bytes),
            iframe_bandwidth: Bandwidth::measure(&video, &[], |s| s.bytes),
            video_codec: "avc1.64000d".into(),
            width: 426,
            height: 240,
            frame_rate: 25.0,
        }
    }

    #[test]
    fn the_audio_rendition_is_named_after_its_language() {
        let v = small_variant();
        let master = |language: &str| {
            let audio = AudioGroup {
                uri: "audio/index.m3u8".into(),
                codec: "mp4a.40.2".into(),
                channels: 2,
                language: language.into(),
            };
            master_playlist(SegmentFormat::Ts, std::slice::from_ref(&v), Some(&audio))
        };
        assert!(master("und").contains(",LANGUAGE=\"und\",NAME=\"Original audio\","));
        assert!(master("fr").contains(",LANGUAGE=\"fr\",NAME=\"French\","));
        assert!(master("pt-BR").contains(",LANGUAGE=\"pt-BR\",NAME=\"Portuguese (BR)\","));
    }

    #[test]
    fn master_without_audio_has_no_audio_group() {
        let v = small_variant();
        let text = master_playlist(SegmentFormat::Ts, &[v], None);
        assert!(!text.contains("TYPE=AUDIO"));
        assert!(!text.contains("AUDIO=\""));
        assert!(text.contains("CODECS=\"avc1.64000d\""));
    }

    #[test]
    fn attribute_lists_split_outside_quotes() {
        assert_eq!(
            split_attributes("A=1,CODECS=\"a,b\",SUBTITLES=\"old\""),
            vec!["A=1", "CODECS=\"a,b\"", "SUBTITLES=\"old\""]
        );
        assert_eq!(
            with_subtitles("A=1,SUBTITLES=\"old\",B=2", true),
            "A=1,B=2,SUBTITLES=\"subs\""
        );
        assert_eq!(with_subtitles("A=1,SUBTITLES=\"old\"", false), "A=1");
    }

    #[test]
    fn a_subtitle_group_carries_over_to_a_new_master() {
        let old = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",URI=\"a.m3u8\"\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",URI=\"captions.m3u8\"\n\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"audio\",SUBTITLES=\"subs\"\n720p/index.m3u8\n";
        let group = subtitle_group(old);
        assert_eq!(group.len(), 1);
        let fresh = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",URI=\"a.m3u8\"\n\n#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"audio\"\n360p/index.m3u8\n";
        let carried = with_subtitle_group(fresh, &group).expect("master");
        assert!(carried.contains(&group[0]), "{carried}");
        assert!(
            carried.contains("BANDWIDTH=2,AUDIO=\"audio\",SUBTITLES=\"subs\""),
            "{carried}"
        );
        assert_eq!(
            with_subtitle_group(&carried, &group).as_deref(),
            Ok(carried.as_str())
        );
        assert_eq!(with_subtitle_group(fresh, &[]).as_deref(), Ok(fresh));
    }
}
