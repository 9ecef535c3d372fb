//! The YAML configuration file (`--config`, default `./vidpipe.yaml`).
//!
//! Only the shape of the file lives here: keys mirror the long flags, one
//! section per subcommand, and every value keeps its line so a bad value is
//! reported as `file:line: key: reason`. Unknown keys are errors. Merging
//! with flags and `VIDPIPE_*` variables happens in the CLI layer.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A config value with the line it came from.
pub type Value<T> = Spanned<T>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// Default for `--progress`.
    pub progress: Option<Value<String>>,
    /// Defaults for `transcode-hls`.
    pub transcode_hls: Option<TranscodeHlsConfig>,
    /// Defaults for `captions`.
    pub captions: Option<CaptionsConfig>,
    /// Defaults for `commentary`.
    pub commentary: Option<CommentaryConfig>,
}

/// The `captions:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaptionsConfig {
    /// Output directory or s3:// prefix.
    pub output: Option<Value<String>>,
    /// Segment duration.
    pub segment_duration: Option<Value<NumberOrText>>,
    /// MPEG-TS time of cue time 0.
    pub mpegts_offset: Option<Value<u64>>,
    /// Base URL of segment URIs.
    pub base_url: Option<Value<String>>,
    /// Live: time between ticks.
    pub interval: Option<Value<NumberOrText>>,
    /// Live: segments per playlist.
    pub window: Option<Value<u64>>,
}

/// A number or a string with a unit (`6`, `"6s"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NumberOrText {
    /// A plain number.
    Number(f64),
    /// Text such as `6s` or `2800k`.
    Text(String),
}

impl fmt::Display for NumberOrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberOrText::Number(n) => write!(f, "{n}"),
            NumberOrText::Text(t) => f.write_str(t),
        }
    }
}

/// The `transcode-hls:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TranscodeHlsConfig {
    /// Output directory.
    pub output: Option<Value<String>>,
    /// Ladder, `1080:5000k,720:2800k,...`.
    pub ladder: Option<Value<String>>,
    /// Audio bitrate.
    pub audio_bitrate: Option<Value<NumberOrText>>,
    /// Segment duration.
    pub segment_duration: Option<Value<NumberOrText>>,
    /// `ts` or `fmp4`.
    pub segment_format: Option<Value<String>>,
    /// x264 preset.
    pub preset: Option<Value<String>>,
    /// Highest output frame rate.
    pub max_fps: Option<Value<u32>>,
    /// Total CPU threads.
    pub threads: Option<Value<usize>>,
}

/// The `commentary:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommentaryConfig {
    /// Output directory.
    pub output: Option<Value<String>>,
    /// Chunk length.
    pub interval: Option<Value<NumberOrText>>,
    /// Voice delay after a line's time.
    pub voice_delay: Option<Value<NumberOrText>>,
    /// Duck gain or `auto`.
    pub duck: Option<Value<NumberOrText>>,
    /// TTS command template.
    pub tts_cmd: Option<Value<String>>,
    /// espeak-ng voice.
    pub voice: Option<Value<String>>,
    /// TTS programs at once.
    pub tts_concurrency: Option<Value<usize>>,
    /// Time limit per TTS line.
    pub tts_timeout: Option<Value<NumberOrText>>,
    /// `--auto` writer command.
    pub writer: Option<Value<String>>,
    /// `--auto` lines per interval.
    pub lines_per_interval: Option<Value<usize>>,
    /// x264 preset.
    pub preset: Option<Value<String>>,
    /// H.264 bitrate.
    pub video_bitrate: Option<Value<NumberOrText>>,
    /// AAC bitrate.
    pub audio_bitrate: Option<Value<NumberOrText>>,
    /// Total CPU threads.
    pub threads: Option<Value<usize>>,
}

/// A config file that cannot be used, with the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has an unknown key or a wrong type.
    #[error("{path}{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// `:LINE` when known.
        line: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigFile {
    /// Loads `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses YAML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        serde_saphyr::from_str(text).map_err(|e| {
            let line = e
                .location()
                .filter(|l| l.line() > 0)
                .map(|l| format!(":{}", l.line()))
                .unwrap_or_default();
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                message: first_line(&e.to_string()),
            }
        })
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid YAML")
        .to_string()
}

/// A value error for `key` at the value's line: `file:line: key: reason`.
pub fn value_error<T>(path: &Path, key: &str, value: &Value<T>, reason: &str) -> ConfigError {
    ConfigError::Parse {
        path: path.to_path_buf(),
        line: format!(":{}", value.referenced.line()),
        message: format!("{key}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_section_with_lines() {
        let text = "progress: json\ntranscode-hls:\n  preset: fast\n  segment-duration: 4s\n";
        let cfg = ConfigFile::parse(Path::new("v.yaml"), text).expect("parses");
        let hls = cfg.transcode_hls.expect("section");
        let preset = hls.preset.expect("preset");
        assert_eq!(preset.value, "fast");
        assert_eq!(preset.referenced.line(), 3);
        assert_eq!(
            hls.segment_duration.map(|v| v.value),
            Some(NumberOrText::Text("4s".into()))
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "transcode-hls:\n  preset: fast\n  bogus-key: 3\n";
        let err = ConfigFile::parse(Path::new("v.yaml"), text).expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("bogus-key"), "{msg}");
        assert!(msg.starts_with("v.yaml:3:"), "{msg}");
    }

    #[test]
    fn wrong_type_is_an_error_with_line() {
        let text = "transcode-hls:\n  max-fps: lots\n";
        let err = ConfigFile::parse(Path::new("v.yaml"), text).expect_err("bad type");
        assert!(err.to_string().starts_with("v.yaml:2:"), "{err}");
    }
}
