//! Subtitle media playlists (RFC 8216) and the subtitle group added to a
//! master playlist. Pure text in, text out, snapshot-tested.

use super::segment::Layout;
use crate::hls::playlist::{with_subtitle_group, SUBTITLE_GROUP};
use std::fmt::Write;

/// Which kind of media playlist to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every segment, `PLAYLIST-TYPE:VOD`, `ENDLIST`.
    Vod,
    /// A sliding window, no PLAYLIST-TYPE; `ENDLIST` once `ended`.
    Live {
        /// The stream is over.
        ended: bool,
    },
}

/// The segments a playlist lists: `first..end` of a track whose captions
/// run to `total_ms`, named by `uri`.
pub struct Listing<'a> {
    /// First listed segment; its index is the EXT-X-MEDIA-SEQUENCE.
    pub first: u64,
    /// One past the last listed segment.
    pub end: u64,
    /// Where the captions end (ms), which shortens the last segment.
    pub total_ms: u64,
    /// URI of segment `index` as the playlist writes it.
    pub uri: &'a dyn Fn(u64) -> String,
}

/// A subtitle media playlist.
pub fn media_playlist(layout: &Layout, listing: &Listing<'_>, kind: Kind) -> String {
    let mut out = String::with_capacity(64 + (listing.end - listing.first) as usize * 40);
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:3");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", layout.target_duration());
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", listing.first);
    if kind == Kind::Vod {
        let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
    }
    for index in listing.first..listing.end {
        let ms = layout.duration(index, listing.total_ms);
        let _ = writeln!(out, "#EXTINF:{}.{:03},", ms / 1000, ms % 1000);
        let _ = writeln!(out, "{}", (listing.uri)(index));
    }
    if matches!(kind, Kind::Vod | Kind::Live { ended: true }) {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

/// One subtitle rendition in the master playlist's `subs` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtitleEntry {
    /// BCP-47 tag.
    pub language: String,
    /// Unique human-readable name.
    pub name: String,
    /// URI of its media playlist, relative to the master or absolute.
    pub uri: String,
    /// The original-language track: DEFAULT=YES.
    pub original: bool,
}

/// `master` with vidpipe's subtitle group replaced by `entries` and every
/// variant stream pointing at it. Applying it to its own output changes
/// nothing.
pub fn attach_subtitles(master: &str, entries: &[SubtitleEntry]) -> Result<String, String> {
    let lines: Vec<String> = entries
        .iter()
        .map(|entry| {
            let yes = if entry.original { "YES" } else { "NO" };
            format!(
                "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLE_GROUP}\",LANGUAGE=\"{}\",NAME=\"{}\",DEFAULT={yes},AUTOSELECT=YES,FORCED=NO,URI=\"{}\"",
                entry.language,
                entry.name.replace('"', "'"),
                entry.uri
            )
        })
        .collect();
    with_subtitle_group(master, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        segment_ms: 4000,
        mpegts: 900_000,
    };

    fn listing(first: u64, end: u64, total_ms: u64, uri: &dyn Fn(u64) -> String) -> Listing<'_> {
        Listing {
            first,
            end,
            total_ms,
            uri,
        }
    }

    #[test]
    fn vod_and_live_playlists_snapshot() {
        let relative = |i: u64| format!("captions-fr-{i}.vtt");
        let absolute = |i: u64| format!("https://cdn.example/talk/captions-{i}.vtt");
        let vod = media_playlist(&LAYOUT, &listing(0, 3, 10_500, &relative), Kind::Vod);
        let live = media_playlist(
            &LAYOUT,
            &listing(5, 8, 60_000, &absolute),
            Kind::Live { ended: false },
        );
        let ended = media_playlist(
            &LAYOUT,
            &listing(5, 8, 30_200, &relative),
            Kind::Live { ended: true },
        );
        insta::assert_snapshot!(format!("{vod}=====\n{live}=====\n{ended}"));
    }

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Audio\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"audio\",CLOSED-CAPTIONS=NONE\n360p/index.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"360p/iframes.m3u8\"\n";

    fn entries() -> Vec<SubtitleEntry> {
        vec![
            SubtitleEntry {
                language: "en".into(),
                name: "English".into(),
                uri: "../captions/captions.m3u8".into(),
                original: true,
            },
            SubtitleEntry {
                language: "fr".into(),
                name: "French".into(),
                uri: "../captions/captions-fr.m3u8".into(),
                original: false,
            },
        ]
    }

    #[test]
    fn master_gets_the_group_once_however_often_it_is_applied() {
        let once = attach_subtitles(MASTER, &entries()).expect("attach");
        insta::assert_snapshot!(once);
        let twice = attach_subtitles(&once, &entries()).expect("again");
        assert_eq!(once, twice);
        let fewer = attach_subtitles(&twice, &entries()[..1]).expect("replace");
        assert_eq!(fewer.matches("TYPE=SUBTITLES").count(), 1);
        assert!(!fewer
            .contains("I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"360p/iframes.m3u8\",SUBTITLES"));
    }

    #[test]
    fn rejects_what_is_not_a_master_playlist() {
        assert!(attach_subtitles("hello", &entries()).is_err());
        assert!(attach_subtitles("#EXTM3U\n#EXTINF:4,\na.ts\n", &entries()).is_err());
    }
}
