//! `--hls`: an EVENT playlist of the chunks' MPEG-TS copies, so a player
//! can start while later chunks are still being made.
//!
//! Chunks finish out of order; the playlist only ever lists a contiguous
//! run from chunk 0 (a player must never see a hole), and gets
//! `EXT-X-ENDLIST` once the last chunk is in.

use std::fmt::Write;

/// One listed chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Segment URI, relative to the playlist.
    pub uri: String,
    /// Duration in seconds.
    pub duration: f64,
}

/// The EVENT playlist text. `target` is the longest chunk, in seconds
/// (rounded up, as RFC 8216 asks).
pub fn event_playlist(entries: &[Entry], target: f64, ended: bool) -> String {
    let target = entries
        .iter()
        .map(|e| e.duration)
        .fold(target, f64::max)
        .ceil()
        .max(1.0) as u64;
    let mut text = String::new();
    let _ = writeln!(text, "#EXTM3U");
    let _ = writeln!(text, "#EXT-X-VERSION:3");
    let _ = writeln!(text, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(text, "#EXT-X-MEDIA-SEQUENCE:0");
    let _ = writeln!(text, "#EXT-X-PLAYLIST-TYPE:EVENT");
    let _ = writeln!(text, "#EXT-X-INDEPENDENT-SEGMENTS");
    for e in entries {
        let _ = writeln!(text, "#EXTINF:{:.3},", e.duration);
        let _ = writeln!(text, "{}", e.uri);
    }
    if ended {
        let _ = writeln!(text, "#EXT-X-ENDLIST");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_playlist_snapshot() {
        let entries = vec![
            Entry {
                uri: "chunk_0000.ts".into(),
                duration: 30.0,
            },
            Entry {
                uri: "chunk_0001.ts".into(),
                duration: 30.0,
            },
            Entry {
                uri: "chunk_0002.ts".into(),
                duration: 12.48,
            },
        ];
        insta::assert_snapshot!(event_playlist(&entries, 30.0, true));
    }

    #[test]
    fn open_playlist_has_no_endlist() {
        let entries = vec![Entry {
            uri: "chunk_0000.ts".into(),
            duration: 2.0,
        }];
        let text = event_playlist(&entries, 2.0, false);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert!(!text.contains("ENDLIST"));
    }
}
