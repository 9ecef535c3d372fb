//! Reading HLS playlists the way a player would: media playlist entries,
//! target duration, master variants and attribute lists.

use std::path::Path;

/// One entry of a media playlist.
#[derive(Debug, Clone)]
pub struct Entry {
    pub duration: f64,
    pub uri: String,
    pub byterange: Option<(u64, u64)>,
}

/// Parses a media playlist's segments.
pub fn media_entries(path: &Path) -> Vec<Entry> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut entries = Vec::new();
    let mut duration = None;
    let mut byterange = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = Some(
                rest.trim_end_matches(',')
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .parse::<f64>()
                    .expect("EXTINF number"),
            );
        } else if let Some(rest) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = rest.split_once('@').expect("len@offset");
            byterange = Some((off.parse().expect("offset"), len.parse().expect("length")));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            entries.push(Entry {
                duration: duration.take().expect("EXTINF before URI"),
                uri: line.to_string(),
                byterange: byterange.take(),
            });
        }
    }
    entries
}

/// Value of `#EXT-X-TARGETDURATION`.
pub fn target_duration(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read playlist");
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .expect("TARGETDURATION")
        .parse()
        .expect("integer")
}

/// A variant of a master playlist.
#[derive(Debug, Clone)]
pub struct StreamInf {
    pub attrs: std::collections::HashMap<String, String>,
    pub uri: String,
}

/// Parses `#EXT-X-STREAM-INF` entries and their URIs.
pub fn variants(master: &Path) -> Vec<StreamInf> {
    let text = std::fs::read_to_string(master).expect("read master");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let uri = lines.next().expect("URI after STREAM-INF").to_string();
            out.push(StreamInf {
                attrs: attributes(rest),
                uri,
            });
        }
    }
    out
}

/// Parses an attribute list (`A=1,B="x,y"`).
pub fn attributes(list: &str) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').expect("KEY=VALUE");
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        map.insert(key.to_string(), value.to_string());
        rest = next;
    }
    map
}
