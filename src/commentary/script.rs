//! The commentary script: a YAML list of lines, each with a time and either
//! text to speak or a pre-recorded audio file.
//!
//! ```yaml
//! - at: 12.5                 # seconds, or "hh:mm:ss.mmm", "mm:ss"
//!   text: Here comes the first goal.
//! - at: "00:01:03.250"
//!   audio: jingle.wav        # relative to the script's directory
//! ```
//!
//! Every problem is reported as `file:line: reason`, naming the line of
//! the script it is about: unknown keys, bad times, lines with both or
//! neither of `text`/`audio`, missing or undecodable audio files, and
//! (once the video's length is known) lines outside the video.

use crate::config::{Scalar, Value};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What a line says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speech {
    /// Text for the TTS backend.
    Text(String),
    /// A pre-recorded audio file (any format libav decodes).
    Audio(PathBuf),
}

/// One commentary line, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Line {
    /// Seconds from the start of the video.
    pub at: f64,
    /// What to say.
    pub speech: Speech,
    /// Where the line came from, for messages: `script.yaml:7`, or
    /// `auto 00:01:05.000` for generated lines. Not part of what a run is
    /// recognised by: the same script read from another path is the same
    /// commentary.
    #[serde(skip)]
    pub origin: String,
}

/// A script that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file cannot be read.
    #[error("cannot read script {path}: {source}")]
    Read {
        /// The script.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line (or the file) is wrong.
    #[error("{location}: {reason}")]
    Invalid {
        /// `file:line` (or just the file when the line is unknown).
        location: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    at: Value<Scalar>,
    text: Option<Value<String>>,
    audio: Option<Value<String>>,
}

/// Reads and validates a script file (everything that does not need the
/// video: use [`check_times`] once its duration is known).
pub fn load(path: &Path) -> Result<Vec<Line>, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses script text; `path` names the file in messages and anchors
/// relative audio paths.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Line>, ScriptError> {
    let file = path.display().to_string();
    if text.trim().is_empty() {
        return Err(ScriptError::Invalid {
            location: file,
            reason: "the script is empty: expected a list of lines with `at` and `text` or `audio`"
                .into(),
        });
    }
    let raw: Vec<RawLine> = serde_saphyr::from_str(text).map_err(|e| {
        let (line, reason) = crate::config::describe_yaml_error(text, &e);
        ScriptError::Invalid {
            location: line.map_or_else(|| file.to_string(), |l| format!("{file}:{l}")),
            reason,
        }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lines = Vec::with_capacity(raw.len());
    for r in raw {
        let location = format!("{file}:{}", r.at.referenced.line());
        let bad = |reason: String| ScriptError::Invalid {
            location: location.clone(),
            reason,
        };
        let at = match &r.at.value {
            Scalar::Number(n) => {
                if n.is_finite() && *n >= 0.0 {
                    *n
                } else {
                    return Err(bad(format!("`at: {n}` must be a time from 0 on")));
                }
            }
            Scalar::Text(t) => parse_time(t).map_err(bad)?,
            Scalar::Bool(b) => return Err(bad(format!("`at: {b}` is not a time"))),
        };
        let speech = match (r.text, r.audio) {
            (Some(t), None) => {
                let text = t.value.trim().to_string();
                if text.is_empty() {
                    return Err(bad("`text` is empty".into()));
                }
                Speech::Text(text)
            }
            (None, Some(a)) => {
                let audio = base.join(&a.value);
                check_audio(&audio).map_err(|reason| ScriptError::Invalid {
                    location: format!("{file}:{}", a.referenced.line()),
                    reason,
                })?;
                Speech::Audio(audio)
            }
            (Some(_), Some(_)) => {
                return Err(bad("a line has either `text` or `audio`, not both".into()))
            }
            (None, None) => return Err(bad("the line needs `text` (to speak) or `audio`".into())),
        };
        lines.push(Line {
            at,
            speech,
            origin: location,
        });
    }
    lines.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(lines)
}

/// Checks that a pre-recorded file exists and has audio libav decodes.
fn check_audio(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err(format!("audio file {} does not exist", path.display()));
    }
    let text = path.to_string_lossy();
    let ictx = crate::media::open_input(&text)
        .map_err(|e| format!("audio file {}: {e}", path.display()))?;
    let stream = ictx
        .streams()
        .best(crate::media::ff::media::Type::Audio)
        .ok_or_else(|| format!("{} has no audio stream", path.display()))?;
    let id = stream.parameters().id();
    if crate::media::ff::decoder::find(id).is_none() {
        return Err(format!(
            "{}: unsupported audio format ({})",
            path.display(),
            id.name()
        ));
    }
    Ok(())
}

/// Rejects lines that start outside a video `duration` seconds long.
pub fn check_times(lines: &[Line], duration: f64) -> Result<(), ScriptError> {
    match lines.iter().find(|l| l.at >= duration) {
        Some(line) => Err(ScriptError::Invalid {
            location: line.origin.clone(),
            reason: format!(
                "the line is at {}, outside the video ({} long)",
                format_time(line.at),
                format_time(duration)
            ),
        }),
        None => Ok(()),
    }
}

/// Parses a time: seconds (`12.5`, `12.5s`) or `[hh:]mm:ss[.mmm]`.
pub fn parse_time(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a time (examples: 12.5, 01:02.5, 00:01:02.500)");
    if !t.contains(':') {
        let secs: f64 = t
            .strip_suffix('s')
            .unwrap_or(t)
            .parse()
            .map_err(|_| bad())?;
        return if secs.is_finite() && secs >= 0.0 {
            Ok(secs)
        } else {
            Err(bad())
        };
    }
    let parts: Vec<&str> = t.split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let (last, whole) = parts.split_last().ok_or_else(bad)?;
    let seconds: f64 = last.parse().map_err(|_| bad())?;
    if !(0.0..60.0).contains(&seconds) || last.starts_with(['+', '-']) {
        return Err(bad());
    }
    let mut total = 0u64;
    for (i, p) in whole.iter().enumerate() {
        let n: u64 = p.parse().map_err(|_| bad())?;
        // Minutes below hours must be < 60; the leading field may be any size.
        if i > 0 && n >= 60 {
            return Err(bad());
        }
        total = total * 60 + n;
    }
    Ok(total as f64 * 60.0 + seconds)
}

/// Formats seconds as `hh:mm:ss.mmm` (rounded to the millisecond).
pub fn format_time(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("12.5"), Ok(12.5));
        assert_eq!(parse_time("3s"), Ok(3.0));
        assert_eq!(parse_time("01:02.5"), Ok(62.5));
        assert_eq!(parse_time("00:01:02.500"), Ok(62.5));
        assert_eq!(parse_time("1:00:00"), Ok(3600.0));
        assert!(parse_time("00:61:00").is_err());
        assert!(parse_time("00:00:75").is_err());
        assert!(parse_time("-3").is_err());
        assert!(parse_time("soon").is_err());
        assert!(parse_time("1:2:3:4").is_err());
    }

    proptest! {
        #[test]
        fn time_format_round_trips(ms in 0u64..360_000_000) {
            let secs = ms as f64 / 1000.0;
            let text = format_time(secs);
            let back = parse_time(&text).expect("parses its own output");
            prop_assert!((back - secs).abs() < 1e-6, "{} -> {} -> {}", secs, text, back);
            prop_assert_eq!(format_time(back), text);
        }
    }

    #[test]
    fn reads_lines_sorted_with_locations() {
        let text = "- at: \"00:00:04.000\"\n  text: second\n- at: 1.5\n  text: first\n";
        let lines = parse(Path::new("s.yaml"), text).expect("valid");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].at, 1.5);
        assert_eq!(lines[0].speech, Speech::Text("first".into()));
        assert_eq!(lines[0].origin, "s.yaml:3");
        assert_eq!(lines[1].origin, "s.yaml:1");
    }

    #[test]
    fn unknown_key_names_the_line() {
        let text = "- at: 1\n  text: hi\n- at: 2\n  txt: typo\n";
        let err = parse(Path::new("s.yaml"), text).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.starts_with("s.yaml:4:"), "{msg}");
        assert!(msg.contains("txt"), "{msg}");
    }

    #[test]
    fn missing_audio_file_names_the_line() {
        let text = "- at: 1\n  text: hi\n- at: 2\n  audio: nowhere.wav\n";
        let err = parse(Path::new("/tmp/s.yaml"), text).expect_err("missing file");
        let msg = err.to_string();
        assert!(msg.starts_with("/tmp/s.yaml:4:"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn text_and_audio_together_is_an_error() {
        let text = "- at: 1\n  text: hi\n  audio: x.wav\n";
        let err = parse(Path::new("s.yaml"), text).expect_err("both");
        assert!(err.to_string().starts_with("s.yaml:1:"), "{err}");
    }

    #[test]
    fn lines_outside_the_video_are_rejected() {
        let lines = parse(
            Path::new("s.yaml"),
            "- at: 1\n  text: a\n- at: 9\n  text: b\n",
        )
        .expect("valid");
        assert!(check_times(&lines, 10.0).is_ok());
        let err = check_times(&lines, 8.0).expect_err("outside");
        assert!(err.to_string().starts_with("s.yaml:3:"), "{err}");
    }
}
