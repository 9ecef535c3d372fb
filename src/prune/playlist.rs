//! Reading a playlist for what it references: just enough of RFC 8216 to
//! know which files a player may still fetch.
//!
//! Every URI a playlist names (media segments, `EXT-X-MAP` init segments,
//! the variant, rendition and I-frame playlists of a master) is resolved
//! against the playlist's own key, the way a player resolves it. Absolute
//! `http(s)` URIs (captions' `--base-url`) are taken by their file name in
//! the playlist's directory, where vidpipe writes them.

use std::collections::BTreeSet;

/// What one playlist says.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    /// A master playlist (it lists variants, not segments).
    pub master: bool,
    /// `EXT-X-ENDLIST`: nothing will be added or removed any more.
    pub ended: bool,
    /// `EXT-X-TARGETDURATION`, in seconds (0 in a master).
    pub target_duration: f64,
    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment.
    pub media_sequence: u64,
    /// The media segments, in order, as keys.
    pub segments: Vec<String>,
    /// Every key the playlist references (segments, init segments, other
    /// playlists).
    pub references: BTreeSet<String>,
}

impl Playlist {
    /// Parses `text`, the playlist stored under `key`. Fails on what is not
    /// a playlist at all, or on one a player would refuse.
    pub fn parse(key: &str, text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next().map(|l| l.trim_start_matches('\u{feff}')) != Some("#EXTM3U") {
            return Err("not a playlist: it does not start with #EXTM3U".into());
        }
        let dir = match key.rfind('/') {
            Some(i) => &key[..=i],
            None => "",
        };
        let mut playlist = Playlist {
            master: false,
            ended: false,
            target_duration: 0.0,
            media_sequence: 0,
            segments: Vec::new(),
            references: BTreeSet::new(),
        };
        let mut expect_uri: Option<&str> = None;
        for line in lines {
            if let Some(tag) = line.strip_prefix('#') {
                if let Some(pending) = expect_uri {
                    if tag.starts_with("EXTINF") || tag.starts_with("EXT-X-STREAM-INF") {
                        return Err(format!("#{pending} without a URI after it"));
                    }
                }
                playlist.tag(tag, dir, &mut expect_uri)?;
                continue;
            }
            let Some(announced) = expect_uri.take() else {
                return Err(format!(
                    "`{line}` is not announced by #EXTINF or #EXT-X-STREAM-INF"
                ));
            };
            let key = resolve(dir, line)?;
            if announced == "EXTINF" {
                playlist.segments.push(key.clone());
            }
            playlist.references.insert(key);
        }
        if let Some(pending) = expect_uri {
            return Err(format!("#{pending} without a URI after it"));
        }
        if !playlist.master && !playlist.segments.is_empty() && playlist.target_duration <= 0.0 {
            return Err("a media playlist without #EXT-X-TARGETDURATION".into());
        }
        Ok(playlist)
    }

    fn tag<'t>(
        &mut self,
        tag: &'t str,
        dir: &str,
        expect_uri: &mut Option<&'t str>,
    ) -> Result<(), String> {
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXTINF" => *expect_uri = Some("EXTINF"),
            "EXT-X-STREAM-INF" => {
                self.master = true;
                *expect_uri = Some("EXT-X-STREAM-INF");
            }
            "EXT-X-ENDLIST" => self.ended = true,
            "EXT-X-TARGETDURATION" => {
                self.target_duration = value
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .ok_or_else(|| format!("bad #EXT-X-TARGETDURATION `{value}`"))?;
            }
            "EXT-X-MEDIA-SEQUENCE" => {
                self.media_sequence = value
                    .parse()
                    .map_err(|_| format!("bad #EXT-X-MEDIA-SEQUENCE `{value}`"))?;
            }
            "EXT-X-MEDIA" | "EXT-X-I-FRAME-STREAM-INF" | "EXT-X-MAP" => {
                if name != "EXT-X-MAP" {
                    self.master = true;
                }
                if let Some(uri) = attribute(value, "URI") {
                    self.references.insert(resolve(dir, uri)?);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The value of attribute `name` in an attribute list, quotes removed.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// The key a player fetches for `uri` in a playlist under `dir`. URIs that
/// climb above the tree's top are errors: nothing outside is ever ours.
fn resolve(dir: &str, uri: &str) -> Result<String, String> {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    let relative = if uri.starts_with("http://") || uri.starts_with("https://") {
        format!("{dir}{}", uri.rsplit('/').next().unwrap_or(uri))
    } else if uri.starts_with('/') || uri.contains("://") {
        return Err(format!("`{uri}` is not a relative URI"));
    } else {
        format!("{dir}{uri}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts
                    .pop()
                    .ok_or_else(|| format!("`{uri}` points outside the tree"))?;
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A segment name split around its sequence number: `seg_00012.vtt` is
/// (`seg_`, 12, 5 digits, `.vtt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered<'a> {
    /// Everything before the number (directory included).
    pub head: &'a str,
    /// The number.
    pub number: u64,
    /// Its digits as written.
    pub digits: usize,
    /// Everything after it.
    pub tail: &'a str,
}

impl<'a> Numbered<'a> {
    /// The last run of digits in `key`'s file name, if there is one.
    pub fn split(key: &'a str) -> Option<Self> {
        let name_start = key.rfind('/').map_or(0, |i| i + 1);
        // The number is in the name, not in its extension (`.m3u8`, `.mp4`).
        let stem_end = key[name_start..]
            .rfind('.')
            .map_or(key.len(), |i| name_start + i);
        let bytes = key.as_bytes();
        let end = (name_start..stem_end)
            .rev()
            .find(|&i| bytes[i].is_ascii_digit())?
            + 1;
        let start = (name_start..end)
            .rev()
            .take_while(|&i| bytes[i].is_ascii_digit())
            .last()?;
        Some(Numbered {
            head: &key[..start],
            number: key[start..end].parse().ok()?,
            digits: end - start,
            tail: &key[end..],
        })
    }

    /// Whether `other` is named the same way (same head, tail and width).
    pub fn same_series(&self, other: &Numbered<'_>) -> bool {
        self.head == other.head && self.tail == other.tail && self.digits == other.digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_media_playlist_lists_its_window() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXTINF:4.000,\ncaptions-en-7.vtt\n#EXTINF:4.000,\ncaptions-en-8.vtt\n";
        let p = Playlist::parse("live/captions-en.m3u8", text).expect("parse");
        assert!(!p.master && !p.ended);
        assert_eq!(p.target_duration, 4.0);
        assert_eq!(p.media_sequence, 7);
        assert_eq!(
            p.segments,
            ["live/captions-en-7.vtt", "live/captions-en-8.vtt"]
        );
    }

    #[test]
    fn a_master_references_its_variants_renditions_and_iframe_playlists() {
        let text = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",URI=\"audio/index.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",URI=\"subs/captions-en.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=100,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=10,URI=\"720p/iframes.m3u8\"\n";
        let p = Playlist::parse("out/talk/master.m3u8", text).expect("parse");
        assert!(p.master);
        let refs: Vec<&str> = p.references.iter().map(String::as_str).collect();
        assert_eq!(
            refs,
            [
                "out/talk/720p/iframes.m3u8",
                "out/talk/720p/index.m3u8",
                "out/talk/audio/index.m3u8",
                "out/talk/subs/captions-en.m3u8"
            ]
        );
    }

    #[test]
    fn init_segments_byte_ranges_and_absolute_urls_resolve_to_keys() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                    #EXTINF:6,\n#EXT-X-BYTERANGE:100@0\nseg_00000.m4s\n\
                    #EXTINF:6,\nhttps://cdn.example/x/seg_00001.m4s?token=1\n#EXT-X-ENDLIST\n";
        let p = Playlist::parse("a/720p/index.m3u8", text).expect("parse");
        assert!(p.ended);
        assert!(p.references.contains("a/720p/init.mp4"));
        assert_eq!(p.segments, ["a/720p/seg_00000.m4s", "a/720p/seg_00001.m4s"]);
    }

    #[test]
    fn what_a_player_would_refuse_is_an_error() {
        for (text, why) in [
            ("seg.ts\n", "EXTM3U"),
            ("#EXTM3U\n#EXTINF:4,\n", "without a URI"),
            ("#EXTM3U\n#EXT-X-TARGETDURATION:x\n", "TARGETDURATION"),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:4\nseg.ts\n",
                "not announced",
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n../../etc/passwd\n",
                "outside",
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n/etc/passwd\n",
                "not a relative",
            ),
        ] {
            let e = Playlist::parse("a/index.m3u8", text).expect_err(text);
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn numbered_names_split_around_their_last_number() {
        let n = Numbered::split("live/en/captions-en-0012.vtt").expect("numbered");
        assert_eq!(
            (n.head, n.number, n.digits, n.tail),
            ("live/en/captions-en-", 12, 4, ".vtt")
        );
        let other = Numbered::split("live/en/captions-en-0003.vtt").expect("numbered");
        assert!(n.same_series(&other));
        assert!(!n.same_series(&Numbered::split("live/fr/captions-fr-0003.vtt").expect("n")));
        assert_eq!(Numbered::split("2024/index.m3u8"), None);
    }
}
