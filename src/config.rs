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

/// The whole file. Every value is a [`Scalar`] so that one parser per
/// setting (the flag's) checks it and names the key when it is wrong.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// Default for `--progress`.
    pub progress: Option<Value<Scalar>>,
    /// Default for `--verbose` (a count: 1 debug, 2 trace).
    pub verbose: Option<Value<Scalar>>,
    /// Default for `--quiet` (a count: 1 errors only, 2 nothing).
    pub quiet: Option<Value<Scalar>>,
    /// Default for `--endpoint-url`.
    pub endpoint_url: Option<Value<Scalar>>,
    /// Default for `--retry-for`.
    pub retry_for: Option<Value<Scalar>>,
    /// Defaults for `transcode-hls`.
    pub transcode_hls: Option<TranscodeHlsConfig>,
    /// Defaults for `upload-chunked`.
    pub upload_chunked: Option<UploadConfig>,
    /// Defaults for `captions`.
    pub captions: Option<CaptionsConfig>,
    /// Defaults for `commentary`.
    pub commentary: Option<CommentaryConfig>,
    /// Defaults for `prune`.
    pub prune: Option<PruneConfig>,
    /// Defaults for `run`.
    pub run: Option<RunConfig>,
    /// Defaults for `transcribe`.
    pub transcribe: Option<TranscribeConfig>,
}

/// One config value as written: a boolean, a number or text (`6`, `"6s"`,
/// `true`). Its meaning comes from the setting's parser.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A plain number.
    Number(f64),
    /// Text such as `6s` or `2800k`.
    Text(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Text(t) => f.write_str(t),
        }
    }
}

/// A config section's value of one setting.
pub type Setting = Option<Value<Scalar>>;

/// The `transcode-hls:` section (keys are the long flags).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TranscodeHlsConfig {
    /// `--output`.
    pub output: Setting,
    /// `--ladder`.
    pub ladder: Setting,
    /// `--audio-bitrate`.
    pub audio_bitrate: Setting,
    /// `--audio-language`.
    pub audio_language: Setting,
    /// `--segment-duration`.
    pub segment_duration: Setting,
    /// `--segment-format`.
    pub segment_format: Setting,
    /// `--preset`.
    pub preset: Setting,
    /// `--max-fps`.
    pub max_fps: Setting,
    /// `--scaling`.
    pub scaling: Setting,
    /// `--threads`.
    pub threads: Setting,
    /// `--shard`.
    pub shard: Setting,
    /// `--delete-source`.
    pub delete_source: Setting,
    /// `--state-dir`.
    pub state_dir: Setting,
}

/// The `upload-chunked:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadConfig {
    /// `--part-size`.
    pub part_size: Setting,
    /// `--concurrency`.
    pub concurrency: Setting,
    /// `--attempts`.
    pub attempts: Setting,
    /// `--presign`.
    pub presign: Setting,
    /// `--json`.
    pub json: Setting,
    /// `--content-type`.
    pub content_type: Setting,
    /// `--shard`.
    pub shard: Setting,
}

/// The `prune:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PruneConfig {
    /// `--older-than`.
    pub older_than: Setting,
    /// `--dry-run`.
    pub dry_run: Setting,
    /// `--expire`.
    pub expire: Setting,
    /// `--abort-uploads`.
    pub abort_uploads: Setting,
    /// `--lifecycle`.
    pub lifecycle: Setting,
    /// `--allow-root`.
    pub allow_root: Setting,
    /// `--state-dir`.
    pub state_dir: Setting,
}

/// The `run:` section (the pipeline itself is in its manifest).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunConfig {
    /// `--shard`.
    pub shard: Setting,
    /// `--jobs`.
    pub jobs: Setting,
    /// `--dry-run`.
    pub dry_run: Setting,
    /// `--report`.
    pub report: Setting,
}

/// The `captions:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CaptionsConfig {
    /// `--output`.
    pub output: Setting,
    /// `--segment-duration`.
    pub segment_duration: Setting,
    /// `--mpegts-offset`.
    pub mpegts_offset: Setting,
    /// `--base-url`.
    pub base_url: Setting,
    /// `--duration`.
    pub duration: Setting,
    /// `--master`.
    pub master: Setting,
    /// `--follow`.
    pub follow: Setting,
    /// `--interval`.
    pub interval: Setting,
    /// `--state-dir`.
    pub state_dir: Setting,
    /// `--window`.
    pub window: Setting,
    /// Only in a `vidpipe run` step: the transcripts of each input, a
    /// pattern such as `{stem}.*.srt` beside the input.
    pub tracks: Setting,
    /// Only in a `vidpipe run` step: add the subtitles to the input's
    /// master playlist.
    pub attach: Setting,
}

/// The `commentary:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommentaryConfig {
    /// `--output`.
    pub output: Setting,
    /// `--script`.
    pub script: Setting,
    /// `--auto`.
    pub auto: Setting,
    /// `--writer`.
    pub writer: Setting,
    /// `--lines-per-interval`.
    pub lines_per_interval: Setting,
    /// `--interval`.
    pub interval: Setting,
    /// `--voice-delay`.
    pub voice_delay: Setting,
    /// `--duck`.
    pub duck: Setting,
    /// `--tts-cmd`.
    pub tts_cmd: Setting,
    /// `--voice`.
    pub voice: Setting,
    /// `--tts-concurrency`.
    pub tts_concurrency: Setting,
    /// `--tts-timeout`.
    pub tts_timeout: Setting,
    /// `--hls`.
    pub hls: Setting,
    /// `--preset`.
    pub preset: Setting,
    /// `--video-bitrate`.
    pub video_bitrate: Setting,
    /// `--audio-bitrate`.
    pub audio_bitrate: Setting,
    /// `--threads`.
    pub threads: Setting,
    /// `--state-dir`.
    pub state_dir: Setting,
}

/// The `transcribe:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TranscribeConfig {
    /// `--output`.
    pub output: Setting,
    /// `--format`.
    pub format: Setting,
    /// `--language`.
    pub language: Setting,
    /// `--engine`.
    pub engine: Setting,
    /// `--model-dir`.
    pub model_dir: Setting,
    /// `--asr-cmd`.
    pub asr_cmd: Setting,
    /// `--asr-timeout`.
    pub asr_timeout: Setting,
    /// `--chunk`.
    pub chunk: Setting,
    /// `--jobs`.
    pub jobs: Setting,
    /// `--follow`.
    pub follow: Setting,
    /// `--idle`.
    pub idle: Setting,
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
        Self::parse(path, &read_text(path)?)
    }

    /// Parses YAML text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        from_yaml(path, text)
    }
}

/// The text of a YAML file vidpipe reads.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// YAML `text` as a `T`, or an error with `path`, the line and the key
/// (how every YAML file vidpipe reads reports a problem).
pub fn from_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, message) = describe_yaml_error(text, &e);
        ConfigError::Parse {
            path: path.to_path_buf(),
            line: line.map(|l| format!(":{l}")).unwrap_or_default(),
            message,
        }
    })
}

/// A YAML parse error as its line and one message without the parser's
/// own `error: line N column M:` prefix (the caller prints `file:line:`),
/// led by the key written on that line when there is one.
pub fn describe_yaml_error(text: &str, e: &serde_saphyr::Error) -> (Option<usize>, String) {
    let line = e.location().map(|l| l.line() as usize).filter(|&l| l > 0);
    let message = first_line(&e.to_string());
    let message = strip_position(&message).to_string();
    let message = match line.and_then(|l| key_at_line(text, l)) {
        Some(key) => format!("{key}: {message}"),
        None => message,
    };
    (line, message)
}

/// `error: line 2 column 9: expected …` → `expected …`.
fn strip_position(message: &str) -> &str {
    let rest = message.strip_prefix("error: ").unwrap_or(message);
    match rest.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((position, reason)) if position.contains("column") => reason,
        _ => rest,
    }
}

/// The dotted key written on 1-based `line` (`transcode-hls.max-fps`),
/// so that a type error from the YAML parser names the key like every
/// other config error.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |l: &str| -> Option<String> {
        let item = l.trim();
        let (key, _) = item.strip_prefix("- ").unwrap_or(item).split_once(':')?;
        let simple = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        simple.then(|| key.to_string())
    };
    let here = lines.get(line.checked_sub(1)?)?;
    let key = key_of(here)?;
    if !here.starts_with([' ', '\t']) {
        return Some(key);
    }
    // The enclosing top-level mapping key; a list item has none.
    let section = lines[..line - 1]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with([' ', '\t', '#']))
        .filter(|l| !l.starts_with('-'))
        .and_then(|l| key_of(l));
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key,
    })
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
        assert_eq!(preset.value, Scalar::Text("fast".into()));
        assert_eq!(preset.referenced.line(), 3);
        assert_eq!(
            hls.segment_duration.map(|v| v.value),
            Some(Scalar::Text("4s".into()))
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
    fn wrong_type_is_an_error_naming_key_and_line() {
        let text = "transcode-hls:\n  max-fps: [1, 2]\n";
        let err = ConfigFile::parse(Path::new("v.yaml"), text).expect_err("bad type");
        assert!(
            err.to_string()
                .starts_with("v.yaml:2: transcode-hls.max-fps:"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_are_said_once() {
        let text = "transcode-hls:\n  preset: [\n";
        let err = ConfigFile::parse(Path::new("v.yaml"), text).expect_err("bad yaml");
        let msg = err.to_string();
        assert!(msg.starts_with("v.yaml:2: transcode-hls.preset: "), "{msg}");
        assert!(!msg.contains("error:") && !msg.contains("column"), "{msg}");
    }

    #[test]
    fn numbers_booleans_and_text_are_all_scalars() {
        let text = "captions:\n  window: 5\n  follow: true\n  interval: 2s\n";
        let cfg = ConfigFile::parse(Path::new("v.yaml"), text).expect("parses");
        let captions = cfg.captions.expect("section");
        assert_eq!(
            captions.window.map(|v| v.value.to_string()),
            Some("5".into())
        );
        assert_eq!(captions.follow.map(|v| v.value), Some(Scalar::Bool(true)));
        assert_eq!(
            captions.interval.map(|v| v.value.to_string()),
            Some("2s".into())
        );
    }
}
