//! Captions: transcripts (SRT, WebVTT, JSON), one per language, into
//! segmented WebVTT and one HLS subtitle playlist per language.
//!
//! Data flow: each [`Track`]'s file is read and parsed ([`parse`]) into
//! cues; [`segment`] cuts them into segments of a fixed duration that all
//! languages share; [`playlist`] writes the media playlists (and the
//! subtitle group of a master playlist). Everything goes through a
//! [`Destination`], segments before the playlist that lists them.
//!
//! Two ways to run: [`publish_vod`] writes every segment and VOD playlists
//! once; [`live::follow`] watches growing transcripts and publishes only
//! the segments that became complete, in sliding-window playlists.
//!
//! The first track is the original language (`captions.m3u8`,
//! `captions-N.vtt`), the others translations (`captions-<lang>.m3u8`,
//! `captions-<lang>-N.vtt`), N counting from 0.

pub mod cue;
pub mod live;
pub mod parse;
pub mod playlist;
pub mod segment;
pub mod write;

use crate::progress::{Event, Reporter};
use crate::storage::Destination;
use parse::{Completeness, Format, Transcript};
use playlist::{Kind, Listing, SubtitleEntry};
use segment::Layout;
use std::path::PathBuf;

/// A caption job that cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum CaptionsError {
    /// A transcript cannot be read.
    #[error("{file}: {source}")]
    Read {
        /// The transcript.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// A transcript is malformed.
    #[error("{file}:{}: {}", .problem.line, .problem.message)]
    Transcript {
        /// The transcript.
        file: String,
        /// Line and reason.
        problem: parse::Problem,
    },
    /// Writing to the destination failed.
    #[error("{target}: {source}")]
    Write {
        /// What was being written.
        target: String,
        /// Why.
        source: std::io::Error,
    },
    /// The master playlist cannot be updated.
    #[error("{master}: {reason}")]
    Master {
        /// The master playlist.
        master: String,
        /// Why.
        reason: String,
    },
    /// The live state file cannot be used.
    #[error("{path}: {reason}")]
    State {
        /// The state file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Stopped by Ctrl-C or SIGTERM, with the state saved.
    #[error("interrupted")]
    Interrupted,
}

/// One language's transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Normalised BCP-47 tag (`und` when unknown).
    pub language: String,
    /// The transcript file.
    pub path: PathBuf,
    /// The first track: the original language.
    pub original: bool,
}

impl Track {
    /// Key of the media playlist.
    pub fn playlist_key(&self) -> String {
        if self.original {
            "captions.m3u8".to_string()
        } else {
            format!("captions-{}.m3u8", self.language)
        }
    }

    /// Key of segment `index`.
    pub fn segment_key(&self, index: u64) -> String {
        if self.original {
            format!("captions-{index}.vtt")
        } else {
            format!("captions-{}-{index}.vtt", self.language)
        }
    }

    /// The transcript file as the user named it.
    pub fn file(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads and parses the transcript, reporting repaired problems not in
    /// `seen` yet as warnings (a growing file is read again every tick).
    pub fn read(
        &self,
        completeness: Completeness,
        reporter: &dyn Reporter,
        seen: &mut std::collections::HashSet<parse::Problem>,
    ) -> Result<Transcript, CaptionsError> {
        let file = self.file();
        let format = Format::of(&self.path).map_err(|message| CaptionsError::Transcript {
            file: file.clone(),
            problem: parse::Problem { line: 1, message },
        })?;
        let bytes = std::fs::read(&self.path).map_err(|source| CaptionsError::Read {
            file: file.clone(),
            source,
        })?;
        let transcript = parse::parse(&bytes, format, completeness).map_err(|problem| {
            CaptionsError::Transcript {
                file: file.clone(),
                problem,
            }
        })?;
        for w in &transcript.warnings {
            if seen.insert(w.clone()) {
                warn(reporter, &file, &w.to_string());
            }
        }
        Ok(transcript)
    }
}

/// A repaired problem, as a `warning` event (the CLI also prints it).
fn warn(reporter: &dyn Reporter, input: &str, message: &str) {
    reporter.report(Event::Warning {
        input: input.to_string(),
        message: message.to_string(),
    });
}

/// How segments are cut, named and addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptionSettings {
    /// Segment duration and timestamp map.
    pub layout: Layout,
    /// Prefix that makes segment URIs absolute (`https://cdn/talk/`).
    pub base_url: Option<String>,
    /// Media length to cover (ms), when longer than the cues (the video's
    /// duration); 0 = up to the end of the last cue.
    pub duration_ms: u64,
}

impl CaptionSettings {
    /// The URI a playlist writes for `key`: relative, or under `--base-url`.
    pub fn uri(&self, key: &str) -> String {
        match &self.base_url {
            Some(base) if base.ends_with('/') => format!("{base}{key}"),
            Some(base) => format!("{base}/{key}"),
            None => key.to_string(),
        }
    }
}

/// What a caption run published.
#[derive(Debug)]
pub struct Published {
    /// Tracks whose playlists are in place.
    pub tracks: Vec<Track>,
    /// Segments per track.
    pub segments: u64,
    /// Tracks that failed, with the reason.
    pub failed: Vec<(Track, CaptionsError)>,
}

/// Writes every segment and a VOD playlist for each track. All tracks get
/// the same number of segments (up to the latest cue of any language). A
/// track whose transcript is bad is reported and skipped; the others are
/// published.
pub fn publish_vod(
    tracks: &[Track],
    dest: &dyn Destination,
    settings: &CaptionSettings,
    reporter: &dyn Reporter,
) -> Published {
    let mut failed = Vec::new();
    let mut parsed = Vec::new();
    for track in tracks {
        match track.read(Completeness::Complete, reporter, &mut Default::default()) {
            Ok(t) => parsed.push((track, t)),
            Err(e) => failed.push((track.clone(), e)),
        }
    }
    let total_ms = parsed
        .iter()
        .map(|(_, t)| t.end())
        .max()
        .unwrap_or(0)
        .max(settings.duration_ms);
    let layout = &settings.layout;
    let count = layout.count(total_ms);
    let mut published = Vec::new();
    for (track, transcript) in parsed {
        let written = write_segments(
            track,
            &transcript,
            0..count,
            total_ms,
            dest,
            settings,
            reporter,
        )
        .and_then(|()| {
            write_playlist(
                track,
                0..count,
                total_ms,
                Kind::Vod,
                dest,
                settings,
                reporter,
            )
        });
        match written {
            Ok(()) => published.push(track.clone()),
            Err(e) => failed.push((track.clone(), e)),
        }
    }
    Published {
        tracks: published,
        segments: count,
        failed,
    }
}

/// Renders and stores segments `range` of a track, all in one batch.
fn write_segments(
    track: &Track,
    transcript: &Transcript,
    range: std::ops::Range<u64>,
    total_ms: u64,
    dest: &dyn Destination,
    settings: &CaptionSettings,
    reporter: &dyn Reporter,
) -> Result<(), CaptionsError> {
    if range.is_empty() {
        return Ok(());
    }
    let files: Vec<(String, Vec<u8>)> =
        segment::render(&settings.layout, transcript, range.clone())
            .into_iter()
            .zip(range.clone())
            .map(|(text, index)| (track.segment_key(index), text.into_bytes()))
            .collect();
    dest.put_all(&files)
        .map_err(|source| CaptionsError::Write {
            target: dest.describe(&track.segment_key(range.start)),
            source,
        })?;
    for ((_, bytes), index) in files.iter().zip(range) {
        reporter.report(Event::SegmentWritten {
            input: track.file(),
            rendition: track.language.clone(),
            index: index as u32,
            duration: settings.layout.duration(index, total_ms) as f64 / 1000.0,
            bytes: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Stores a track's media playlist listing segments `listed`.
fn write_playlist(
    track: &Track,
    listed: std::ops::Range<u64>,
    total_ms: u64,
    kind: Kind,
    dest: &dyn Destination,
    settings: &CaptionSettings,
    reporter: &dyn Reporter,
) -> Result<(), CaptionsError> {
    let uri = |index: u64| settings.uri(&track.segment_key(index));
    let text = playlist::media_playlist(
        &settings.layout,
        &Listing {
            first: listed.start,
            end: listed.end,
            total_ms,
            uri: &uri,
        },
        kind,
    );
    let key = track.playlist_key();
    dest.put(&key, text.as_bytes())
        .map_err(|source| CaptionsError::Write {
            target: dest.describe(&key),
            source,
        })?;
    reporter.report(Event::PlaylistWritten {
        input: track.file(),
        language: track.language.clone(),
        path: dest.describe(&key),
        media_sequence: listed.start,
        segments: listed.end - listed.start,
        ended: matches!(kind, Kind::Vod | Kind::Live { ended: true }),
    });
    Ok(())
}

/// The subtitle group entries for `tracks`, with playlist URIs made by
/// `uri` from each playlist's key.
pub fn subtitle_entries(tracks: &[Track], uri: impl Fn(&str) -> String) -> Vec<SubtitleEntry> {
    tracks
        .iter()
        .map(|t| SubtitleEntry {
            language: t.language.clone(),
            name: crate::language::language_name(&t.language),
            uri: uri(&t.playlist_key()),
            original: t.original,
        })
        .collect()
}

/// The `X-TIMESTAMP-MAP` offset that lines captions up with the master's
/// renditions as transcode-hls writes them: MPEG-TS segments start at 10 s
/// ([`segment::DEFAULT_MPEGTS`]), fMP4 segments (an `EXT-X-MAP` in the
/// first variant's playlist) at 0. The default when the master cannot be
/// read; reading it properly is [`attach_to_master`]'s job.
pub fn mpegts_for_master(master: &dyn Destination, key: &str) -> u64 {
    let text = |key: &str| {
        master
            .get(key)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let first_variant = text(key).and_then(|m| {
        let mut lines = m.lines();
        lines.find(|l| l.starts_with("#EXT-X-STREAM-INF:"))?;
        lines
            .find(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
    });
    let relative = first_variant.filter(|uri| !uri.contains("://") && !uri.starts_with('/'));
    let variant_key = relative.map(|uri| match key.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{uri}"),
        None => uri,
    });
    match variant_key.and_then(|k| text(&k)) {
        Some(playlist) if playlist.lines().any(|l| l.starts_with("#EXT-X-MAP:")) => 0,
        _ => segment::DEFAULT_MPEGTS,
    }
}

/// Adds the subtitle group to the master playlist at `key` of `master`
/// (replacing an earlier one), atomically; `false` when the master already
/// had exactly this group and was left untouched.
pub fn attach_to_master(
    master: &dyn Destination,
    key: &str,
    entries: &[SubtitleEntry],
) -> Result<bool, CaptionsError> {
    let error = |reason: String| CaptionsError::Master {
        master: master.describe(key),
        reason,
    };
    let bytes = master
        .get(key)
        .map_err(|e| error(format!("cannot read it: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| error("not UTF-8 text".into()))?;
    let updated = playlist::attach_subtitles(&text, entries).map_err(error)?;
    if updated == text {
        return Ok(false);
    }
    master
        .put(key, updated.as_bytes())
        .map_err(|e| error(format!("cannot write it: {e}")))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Collected;
    use crate::storage::LocalDir;

    #[test]
    fn vod_package_of_an_original_and_two_translations_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write transcript");
            path
        };
        let tracks = [
            Track {
                language: "en".into(),
                path: input("talk.en.srt", "1\n00:00:01,000 --> 00:00:05,000\nHello & <i>welcome</i>\n\n2\n00:00:06,500 --> 00:00:07,000\na < b > c\n\n3\n00:00:15,000 --> 00:00:16,000\nafter a silence\n"),
                original: true,
            },
            Track {
                language: "fr".into(),
                path: input("talk.fr.vtt", "WEBVTT\n\nSTYLE\n::cue(b) { color: peachpuff }\n\nc1\n00:00:01.000 --> 00:00:05.000 align:start\nBonjour &amp; <b>bienvenue</b>\n\n00:00:15.000 --> 00:00:16.000\naprès un silence\n"),
                original: false,
            },
            Track {
                language: "de".into(),
                path: input("talk.de.json", r#"[{"start": 1, "end": 5, "text": "Hallo & willkommen"}, {"start": 15, "end": 17.25, "text": "nach einer Pause\nzweite Zeile"}]"#),
                original: false,
            },
        ];
        let out = dir.path().join("out");
        let settings = CaptionSettings {
            layout: Layout {
                segment_ms: 4000,
                mpegts: segment::DEFAULT_MPEGTS,
            },
            base_url: None,
            duration_ms: 0,
        };
        let events = Collected::default();
        let published = publish_vod(&tracks, &LocalDir::new(&out), &settings, &events);
        assert!(published.failed.is_empty());
        assert_eq!(published.segments, 5);
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let package: String = names
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(out.join(name)).expect("read");
                format!("===== {name}\n{text}")
            })
            .collect();
        insta::assert_snapshot!(package);
    }
}
