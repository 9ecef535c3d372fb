//! Subtitle media playlists (RFC 8216) and the subtitle group added to a
//! master playlist. Pure text in, text out, snapshot-tested.

use super::segment::Layout;
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

/// The group id vidpipe's subtitle renditions use.
pub const GROUP_ID: &str = "subs";

/// `master` with vidpipe's subtitle group replaced by `entries` and every
/// variant stream pointing at it. Applying it to its own output changes
/// nothing.
pub fn attach_subtitles(master: &str, entries: &[SubtitleEntry]) -> Result<String, String> {
    if !master.trim_start_matches('\u{FEFF}').starts_with("#EXTM3U") {
        return Err("not an HLS playlist: it does not start with #EXTM3U".into());
    }
    let ours = format!("GROUP-ID=\"{GROUP_ID}\"");
    let lines: Vec<&str> = master
        .lines()
        .filter(|l| {
            !(l.starts_with("#EXT-X-MEDIA:") && l.contains("TYPE=SUBTITLES") && l.contains(&ours))
        })
        .collect();
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
    let mut out = String::with_capacity(master.len() + entries.len() * 160);
    for (i, line) in lines.iter().enumerate() {
        if i == insert_at {
            for entry in entries {
                let yes = if entry.original { "YES" } else { "NO" };
                let _ = writeln!(
                    out,
                    "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP_ID}\",LANGUAGE=\"{}\",NAME=\"{}\",DEFAULT={yes},AUTOSELECT=YES,FORCED=NO,URI=\"{}\"",
                    entry.language,
                    entry.name.replace('"', "'"),
                    entry.uri
                );
            }
        }
        match line.strip_prefix("#EXT-X-STREAM-INF:") {
            Some(attributes) => {
                let _ = writeln!(out, "#EXT-X-STREAM-INF:{}", with_subtitles(attributes));
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    Ok(out)
}

/// An attribute list with `SUBTITLES="subs"` set (replacing any value).
fn with_subtitles(attributes: &str) -> String {
    let mut parts: Vec<String> = split_attributes(attributes)
        .into_iter()
        .filter(|a| !a.starts_with("SUBTITLES="))
        .map(str::to_string)
        .collect();
    parts.push(format!("SUBTITLES=\"{GROUP_ID}\""));
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

    #[test]
    fn attribute_lists_split_outside_quotes() {
        assert_eq!(
            split_attributes("A=1,CODECS=\"a,b\",SUBTITLES=\"old\""),
            vec!["A=1", "CODECS=\"a,b\"", "SUBTITLES=\"old\""]
        );
        assert_eq!(
            with_subtitles("A=1,SUBTITLES=\"old\",B=2"),
            "A=1,B=2,SUBTITLES=\"subs\""
        );
    }
}
