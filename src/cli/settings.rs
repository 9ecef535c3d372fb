//! From raw arguments to validated settings.
//!
//! Precedence: flags, then `VIDPIPE_*` environment (both arrive through
//! clap), then the YAML config file, then built-in defaults. Every value is
//! validated here, so the engine only ever sees settings that make sense; a
//! bad value is a usage error naming the flag, or the config file, line and
//! key.

use super::{CaptionsArgs, Cli, ProgressMode, SegmentFormatArg, TranscodeArgs};
use std::path::PathBuf;
use vidpipe::captions::cue::{language_from_file_name, language_tag};
use vidpipe::captions::segment::{Layout, DEFAULT_MPEGTS};
use vidpipe::captions::{CaptionSettings, Track};
use vidpipe::config::{value_error, ConfigError, ConfigFile, NumberOrText, Value};
use vidpipe::hls::ladder::Ladder;
use vidpipe::hls::playlist::SegmentFormat;
use vidpipe::hls::{TranscodeSettings, PRESETS};
use vidpipe::inputs::Shard;
use vidpipe::storage::{Location, RetryPolicy, S3Options};
use vidpipe::units::{parse_seconds, Bitrate};

/// A setting that cannot be used: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A flag or environment variable has a bad value.
    #[error("{flag}: {reason}")]
    Flag {
        /// The flag and its variable.
        flag: String,
        /// What is wrong.
        reason: String,
    },
    /// The config file is bad.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something required is missing.
    #[error("{0}")]
    Missing(String),
    /// A commentary script is bad (the message names its file and line).
    #[error(transparent)]
    Script(#[from] vidpipe::commentary::script::ScriptError),
}

/// The loaded config file and where it came from.
pub struct Layers {
    path: PathBuf,
    file: ConfigFile,
    endpoint_url: Option<String>,
    retry: RetryPolicy,
}

impl Layers {
    /// Loads `--config`, or `./vidpipe.yaml` when present, or nothing.
    pub fn load(cli: &Cli) -> Result<Self, SettingsError> {
        let (path, file) = match &cli.config {
            Some(path) => (path.clone(), ConfigFile::load(path)?),
            None => {
                let default = PathBuf::from("vidpipe.yaml");
                if default.is_file() {
                    let file = ConfigFile::load(&default)?;
                    (default, file)
                } else {
                    (default, ConfigFile::default())
                }
            }
        };
        let retry_for = parse_seconds(&cli.retry_for)
            .and_then(|secs| {
                std::time::Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("`{}` is too long", cli.retry_for))
            })
            .map_err(|reason| SettingsError::Flag {
                flag: "--retry-for (VIDPIPE_RETRY_FOR)".into(),
                reason,
            })?;
        Ok(Layers {
            path,
            file,
            endpoint_url: cli.endpoint_url.clone(),
            retry: RetryPolicy::for_duration(retry_for),
        })
    }

    /// `--progress`, resolved.
    pub fn progress(&self, cli: &Cli) -> Result<ProgressMode, SettingsError> {
        if let Some(mode) = cli.progress {
            return Ok(mode);
        }
        match &self.file.progress {
            None => Ok(ProgressMode::Auto),
            Some(v) => <ProgressMode as clap::ValueEnum>::from_str(&v.value, true)
                .map_err(|_| self.bad(v, "progress", "must be auto, bars, json or none")),
        }
    }

    /// The loaded config file.
    pub(super) fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// The endpoint for s3:// destinations, from `--endpoint-url`, and how
    /// long their requests are retried (`--retry-for`).
    pub(super) fn s3(&self) -> S3Options {
        S3Options {
            endpoint_url: self.endpoint_url.clone(),
            retry: self.retry,
        }
    }

    fn bad<T>(&self, value: &Value<T>, key: &str, reason: &str) -> SettingsError {
        value_error(&self.path, key, value, reason).into()
    }

    /// Resolves one setting: the flag/env value if given, else the config
    /// value, else the default; both sources go through `parse`.
    pub(super) fn resolve<F, C, T>(
        &self,
        flag: (&str, Option<F>),
        config: (&str, Option<&Value<C>>),
        default: T,
        parse_flag: impl Fn(F) -> Result<T, String>,
        parse_config: impl Fn(&C) -> Result<T, String>,
    ) -> Result<T, SettingsError> {
        if let Some(raw) = flag.1 {
            return parse_flag(raw).map_err(|reason| SettingsError::Flag {
                flag: flag.0.to_string(),
                reason,
            });
        }
        match config.1 {
            Some(v) => parse_config(&v.value).map_err(|reason| self.bad(v, config.0, &reason)),
            None => Ok(default),
        }
    }

    /// Validated settings for `transcode-hls`.
    pub fn transcode(&self, args: &TranscodeArgs) -> Result<TranscodeRun, SettingsError> {
        let empty = Default::default();
        let cfg = self.file.transcode_hls.as_ref().unwrap_or(&empty);
        let defaults = TranscodeSettings::default();
        let text = |v: &NumberOrText| v.to_string();
        let output = self.resolve(
            ("--output (VIDPIPE_OUTPUT)", args.output.clone()),
            ("transcode-hls.output", cfg.output.as_ref()),
            None,
            |p| Location::parse(&p).map(Some),
            |s: &String| Location::parse(s).map(Some),
        )?;
        let output = output.ok_or_else(|| {
            SettingsError::Missing(
                "no output directory: pass -o DEST (or set VIDPIPE_OUTPUT, or transcode-hls.output in the config file)".into(),
            )
        })?;
        let ladder = self.resolve(
            ("--ladder (VIDPIPE_LADDER)", args.ladder.clone()),
            ("transcode-hls.ladder", cfg.ladder.as_ref()),
            defaults.ladder.clone(),
            |s| Ladder::parse(&s),
            |s: &String| Ladder::parse(s),
        )?;
        let audio_bitrate = self.resolve(
            (
                "--audio-bitrate (VIDPIPE_AUDIO_BITRATE)",
                args.audio_bitrate.clone(),
            ),
            ("transcode-hls.audio-bitrate", cfg.audio_bitrate.as_ref()),
            defaults.audio_bitrate,
            |s| parse_audio_bitrate(&s),
            |v| parse_audio_bitrate(&text(v)),
        )?;
        let segment_ms = self.resolve(
            (
                "--segment-duration (VIDPIPE_SEGMENT_DURATION)",
                args.segment_duration.clone(),
            ),
            (
                "transcode-hls.segment-duration",
                cfg.segment_duration.as_ref(),
            ),
            defaults.segment_ms,
            |s| parse_segment_ms(&s),
            |v| parse_segment_ms(&text(v)),
        )?;
        let segment_format = self.resolve(
            (
                "--segment-format (VIDPIPE_SEGMENT_FORMAT)",
                args.segment_format,
            ),
            ("transcode-hls.segment-format", cfg.segment_format.as_ref()),
            defaults.segment_format,
            |f| Ok(segment_format(f)),
            |s: &String| {
                <SegmentFormatArg as clap::ValueEnum>::from_str(s, true)
                    .map(segment_format)
                    .map_err(|_| "must be ts or fmp4".to_string())
            },
        )?;
        let preset = self.resolve(
            ("--preset (VIDPIPE_PRESET)", args.preset.clone()),
            ("transcode-hls.preset", cfg.preset.as_ref()),
            defaults.preset.clone(),
            |s| parse_preset(&s),
            |s: &String| parse_preset(s),
        )?;
        let max_fps = self.resolve(
            ("--max-fps (VIDPIPE_MAX_FPS)", args.max_fps),
            ("transcode-hls.max-fps", cfg.max_fps.as_ref()),
            defaults.max_fps,
            parse_max_fps,
            |n: &u32| parse_max_fps(*n),
        )?;
        let threads = self.resolve(
            ("--threads (VIDPIPE_THREADS)", args.threads),
            ("transcode-hls.threads", cfg.threads.as_ref()),
            defaults.threads,
            Ok,
            |n: &usize| Ok(*n),
        )?;
        let shard = args
            .shard
            .as_deref()
            .map(Shard::parse)
            .transpose()
            .map_err(|reason| SettingsError::Flag {
                flag: "--shard (VIDPIPE_SHARD)".into(),
                reason,
            })?;
        Ok(TranscodeRun {
            inputs: args.inputs.clone(),
            output,
            s3: self.s3(),
            delete_source: args.delete_source,
            shard,
            settings: TranscodeSettings {
                ladder,
                audio_bitrate,
                segment_ms,
                segment_format,
                preset,
                max_fps,
                threads,
            },
        })
    }
}

impl Layers {
    /// Validated settings for `captions`.
    pub fn captions(&self, args: &CaptionsArgs) -> Result<CaptionsRun, SettingsError> {
        let empty = Default::default();
        let cfg = self.file.captions.as_ref().unwrap_or(&empty);
        let text = |v: &NumberOrText| v.to_string();
        let output = self
            .resolve(
                ("--output", args.output.clone()),
                ("captions.output", cfg.output.as_ref()),
                None,
                |p| Location::parse(&p).map(Some),
                |s: &String| Location::parse(s).map(Some),
            )?
            .ok_or_else(|| {
                SettingsError::Missing(
                    "no output directory: pass -o DEST (or captions.output in the config file)"
                        .into(),
                )
            })?;
        let segment_ms = self.resolve(
            (
                "--segment-duration (VIDPIPE_CAPTIONS_SEGMENT_DURATION)",
                args.segment_duration.clone(),
            ),
            ("captions.segment-duration", cfg.segment_duration.as_ref()),
            4000,
            |s| parse_segment_ms(&s),
            |v| parse_segment_ms(&text(v)),
        )?;
        let mpegts = self.resolve(
            (
                "--mpegts-offset (VIDPIPE_CAPTIONS_MPEGTS)",
                args.mpegts_offset,
            ),
            ("captions.mpegts-offset", cfg.mpegts_offset.as_ref()),
            None,
            |n| parse_mpegts(n).map(Some),
            |n: &u64| parse_mpegts(*n).map(Some),
        )?;
        let base_url = self.resolve(
            (
                "--base-url (VIDPIPE_CAPTIONS_BASE_URL)",
                args.base_url.clone(),
            ),
            ("captions.base-url", cfg.base_url.as_ref()),
            None,
            |s| parse_base_url(&s).map(Some),
            |s: &String| parse_base_url(s).map(Some),
        )?;
        let duration_ms = match &args.duration {
            None => 0,
            Some(d) => parse_seconds(d)
                .map(|s| (s * 1000.0).round() as u64)
                .map_err(|reason| SettingsError::Flag {
                    flag: "--duration".into(),
                    reason,
                })?,
        };
        let interval = self.resolve(
            ("--interval", args.interval.clone()),
            ("captions.interval", cfg.interval.as_ref()),
            std::time::Duration::from_secs(5),
            |s| parse_interval(&s),
            |v| parse_interval(&text(v)),
        )?;
        let window = self.resolve(
            ("--window", args.window),
            ("captions.window", cfg.window.as_ref()),
            100,
            parse_window,
            |n: &u64| parse_window(*n),
        )?;
        let master = args
            .master
            .as_deref()
            .map(parse_master)
            .transpose()
            .map_err(|reason| SettingsError::Flag {
                flag: "--master".into(),
                reason,
            })?;
        Ok(CaptionsRun {
            mpegts_given: mpegts.is_some(),
            tracks: parse_tracks(&args.tracks)?,
            output,
            master,
            s3: self.s3(),
            settings: CaptionSettings {
                layout: Layout {
                    segment_ms: u64::from(segment_ms),
                    mpegts: mpegts.unwrap_or(DEFAULT_MPEGTS),
                },
                base_url,
                duration_ms,
            },
            live: args.follow.then_some(LiveOptions {
                interval,
                window,
                finish: args.finish,
            }),
        })
    }
}

/// Everything `captions` needs to run.
#[derive(Debug, Clone)]
pub struct CaptionsRun {
    /// Languages, the original first.
    pub tracks: Vec<Track>,
    /// Where segments and playlists go.
    pub output: Location,
    /// The master playlist to add the subtitle group to.
    pub master: Option<MasterPath>,
    /// `--mpegts-offset` was set; otherwise it follows the master's
    /// segment format.
    pub mpegts_given: bool,
    /// How to reach S3.
    pub s3: S3Options,
    /// Segmenting and addressing.
    pub settings: CaptionSettings,
    /// Live options, with --follow.
    pub live: Option<LiveOptions>,
}

/// `--follow` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Time between ticks.
    pub interval: std::time::Duration,
    /// Segments per playlist.
    pub window: u64,
    /// End the stream now.
    pub finish: bool,
}

/// Where `--master` is: a directory (local or bucket prefix) and the file's
/// name in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterPath {
    /// The directory or bucket prefix holding it.
    pub dir: Location,
    /// Its file name.
    pub name: String,
}

fn parse_master(text: &str) -> Result<MasterPath, String> {
    if let Some(rest) = text.strip_prefix("s3://") {
        let (dir, name) = rest
            .rsplit_once('/')
            .filter(|(dir, name)| !dir.is_empty() && !name.is_empty())
            .ok_or_else(|| format!("`{text}`: expected s3://bucket/path/master.m3u8"))?;
        return Ok(MasterPath {
            dir: Location::parse(&format!("s3://{dir}"))?,
            name: name.to_string(),
        });
    }
    let path = std::path::Path::new(text);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("`{text}` does not name a playlist file"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    Ok(MasterPath {
        dir: Location::Local(dir.to_path_buf()),
        name,
    })
}

/// `[LANG=]FILE` arguments as tracks: the first is the original language
/// (`und` when unknown), every translation needs a language, no language
/// twice.
fn parse_tracks(args: &[String]) -> Result<Vec<Track>, SettingsError> {
    let mut tracks: Vec<Track> = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let bad = |reason: String| SettingsError::Flag {
            flag: format!("track `{arg}`"),
            reason,
        };
        let (language, file) = match arg.split_once('=') {
            Some((lang, file)) if !lang.contains(['/', '.']) => {
                (Some(language_tag(lang).map_err(bad)?), file)
            }
            _ => (None, arg.as_str()),
        };
        let path = PathBuf::from(file);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let language = match language.or_else(|| language_from_file_name(&name)) {
            Some(language) => language,
            None if i == 0 => "und".to_string(),
            None => return Err(bad(
                "a translation needs a language: pass LANG=FILE or name the file NAME.<lang>.srt"
                    .into(),
            )),
        };
        if let Some(other) = tracks
            .iter()
            .find(|t| t.language.eq_ignore_ascii_case(&language))
        {
            return Err(bad(format!(
                "language {language} is already used by {}",
                other.path.display()
            )));
        }
        tracks.push(Track {
            language,
            path,
            original: i == 0,
        });
    }
    Ok(tracks)
}

fn parse_mpegts(n: u64) -> Result<u64, String> {
    if n < 1 << 33 {
        Ok(n)
    } else {
        Err(format!("{n} is beyond the 33-bit MPEG-TS clock"))
    }
}

fn parse_base_url(s: &str) -> Result<String, String> {
    if s.contains("://") && !s.contains(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an absolute URL such as https://cdn.example/talk/"
        ))
    }
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let secs = parse_seconds(s)?;
    if !(0.05..=3600.0).contains(&secs) {
        return Err(format!(
            "interval {secs}s must be between 0.05 and 3600 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn parse_window(n: u64) -> Result<u64, String> {
    if n >= 3 {
        Ok(n)
    } else {
        Err(format!(
            "{n}: a live playlist needs at least 3 segments (RFC 8216 6.2.2)"
        ))
    }
}

/// Everything `transcode-hls` needs to run.
#[derive(Debug, Clone)]
pub struct TranscodeRun {
    /// Input arguments as given.
    pub inputs: Vec<String>,
    /// Where the output goes.
    pub output: Location,
    /// How to reach S3 for s3:// inputs and outputs.
    pub s3: S3Options,
    /// Delete s3:// inputs after success.
    pub delete_source: bool,
    /// This machine's share of the inputs.
    pub shard: Option<Shard>,
    /// Engine settings.
    pub settings: TranscodeSettings,
}

fn segment_format(f: SegmentFormatArg) -> SegmentFormat {
    match f {
        SegmentFormatArg::Ts => SegmentFormat::Ts,
        SegmentFormatArg::Fmp4 => SegmentFormat::Fmp4,
    }
}

pub(super) fn parse_audio_bitrate(s: &str) -> Result<Bitrate, String> {
    let b = Bitrate::parse(s)?;
    if !(32_000..=512_000).contains(&b.0) {
        return Err(format!("audio bitrate {b} must be between 32k and 512k"));
    }
    Ok(b)
}

fn parse_segment_ms(s: &str) -> Result<u32, String> {
    let secs = parse_seconds(s)?;
    if !(1.0..=60.0).contains(&secs) {
        return Err(format!(
            "segment duration {secs}s must be between 1 and 60 seconds"
        ));
    }
    Ok((secs * 1000.0).round() as u32)
}

pub(super) fn parse_preset(s: &str) -> Result<String, String> {
    if PRESETS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown x264 preset `{s}` (one of: {})",
            PRESETS.join(", ")
        ))
    }
}

fn parse_max_fps(n: u32) -> Result<u32, String> {
    if (1..=240).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} must be between 1 and 240"))
    }
}
