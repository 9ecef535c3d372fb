//! The layers a setting can come from, and the one resolver over them.
//!
//! Precedence: flags, then `VIDPIPE_*` environment (both arrive through
//! clap), then the YAML config file, then built-in defaults. Each setting
//! has ONE parser, used for the flag and for the config value alike, so a
//! bad value gets the same reason wherever it came from: a flag names
//! itself and its variable (`--max-fps (VIDPIPE_MAX_FPS): …`), a config
//! value its file, line and key (`vidpipe.yaml:3: transcode-hls.max-fps: …`).
//!
//! The value parsers shared by several subcommands (durations, bitrates,
//! presets) live at the bottom; each subcommand's own checks live in its
//! `settings` function.

use super::args::{Cli, ProgressMode};
use super::error::SettingsError;
use std::path::PathBuf;
use std::time::Duration;
use vidpipe::config::{value_error, ConfigFile, Scalar, Value};
use vidpipe::hls::PRESETS;
use vidpipe::storage::retry::DEFAULT_RETRY_FOR;
use vidpipe::storage::{RetryPolicy, S3Options};
use vidpipe::units::{parse_seconds, Bitrate};

/// The loaded config file and the global flags: what every subcommand's
/// `settings` reads besides its own arguments.
pub struct Layers {
    path: PathBuf,
    file: ConfigFile,
    /// `--progress`, resolved (not yet against the terminal).
    pub progress: ProgressMode,
    /// `-v` count, from the flag or the config file.
    pub verbose: u8,
    /// `-q` count, from the flag or the config file.
    pub quiet: u8,
    s3: S3Options,
}

impl Layers {
    /// Loads `--config`, or `./vidpipe.yaml` when present, or nothing, and
    /// resolves the global settings.
    pub fn load(cli: &Cli) -> Result<Self, SettingsError> {
        let (path, file) = match &cli.config {
            Some(path) => (path.clone(), ConfigFile::load(path)?),
            None => {
                let default = PathBuf::from("vidpipe.yaml");
                let file = if default.is_file() {
                    ConfigFile::load(&default)?
                } else {
                    ConfigFile::default()
                };
                (default, file)
            }
        };
        let mut layers = Layers {
            path,
            file,
            progress: ProgressMode::Auto,
            verbose: cli.verbose,
            quiet: cli.quiet,
            s3: S3Options::default(),
        };
        let top = layers.section("");
        let progress = top.get(
            "progress",
            cli.progress.map(choice_name).as_deref(),
            layers.file.progress.as_ref(),
            parse_choice::<ProgressMode>,
        )?;
        let verbose = top.get("verbose", None, layers.file.verbose.as_ref(), parse_count)?;
        let quiet = top.get("quiet", None, layers.file.quiet.as_ref(), parse_count)?;
        let endpoint_url = top.get(
            "endpoint-url",
            cli.endpoint_url.as_deref(),
            layers.file.endpoint_url.as_ref(),
            |s| parse_url(s).map(Some),
        )?;
        let retry_for = top.or(
            "retry-for",
            cli.retry_for.as_deref(),
            layers.file.retry_for.as_ref(),
            DEFAULT_RETRY_FOR,
            |v| parse_seconds_in(v, "retry time", 0.0..=86400.0).map(Duration::from_secs_f64),
        )?;
        layers.progress = progress.unwrap_or(ProgressMode::Auto);
        // A count given on the command line wins over the file's.
        if cli.verbose == 0 && cli.quiet == 0 {
            layers.verbose = verbose.unwrap_or(0);
            layers.quiet = quiet.unwrap_or(0);
        }
        layers.s3 = S3Options {
            endpoint_url: endpoint_url.flatten(),
            retry: RetryPolicy::for_duration(retry_for),
        };
        Ok(layers)
    }

    /// These global settings with `file` as the config file (read from
    /// `path`): how a pipeline step gets its section from the manifest.
    pub fn with_file(&self, path: &std::path::Path, file: ConfigFile) -> Layers {
        Layers {
            path: path.to_path_buf(),
            file,
            progress: self.progress,
            verbose: self.verbose,
            quiet: self.quiet,
            s3: self.s3.clone(),
        }
    }

    /// The path the settings' messages name.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The loaded config file.
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// How to reach S3 for s3:// inputs and outputs.
    pub fn s3(&self) -> &S3Options {
        &self.s3
    }

    /// The resolver for the settings of one subcommand (`""` for the
    /// global keys at the top of the file).
    pub fn section(&self, name: &'static str) -> Section<'_> {
        Section { layers: self, name }
    }
}

/// Resolves the settings of one subcommand: flag or variable, else config
/// key, else default, through one parser per setting.
pub struct Section<'a> {
    layers: &'a Layers,
    name: &'static str,
}

impl Section<'_> {
    /// The setting `key` (its long flag's name): parsed from the flag if
    /// given, else from the config value, else `None`.
    pub fn get<T>(
        &self,
        key: &str,
        flag: Option<&str>,
        config: Option<&Value<Scalar>>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError> {
        if let Some(raw) = flag {
            return parse(raw).map(Some).map_err(|reason| SettingsError::Flag {
                flag: self.flag_label(key),
                reason,
            });
        }
        match config {
            None => Ok(None),
            Some(v) => parse(&v.value.to_string()).map(Some).map_err(|reason| {
                value_error(&self.layers.path, &self.key_label(key), v, &reason).into()
            }),
        }
    }

    /// Like [`get`](Self::get), with a default when neither layer sets it.
    pub fn or<T>(
        &self,
        key: &str,
        flag: Option<&str>,
        config: Option<&Value<Scalar>>,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, SettingsError> {
        Ok(self.get(key, flag, config, parse)?.unwrap_or(default))
    }

    /// A switch (`--follow`): on when the flag is given, else the config
    /// value, else off.
    pub fn switch(
        &self,
        key: &str,
        flag: bool,
        config: Option<&Value<Scalar>>,
    ) -> Result<bool, SettingsError> {
        self.or(key, flag.then_some("true"), config, false, parse_bool)
    }

    /// `--state-dir`: a local directory for the state of a bucket output.
    pub fn state_dir(
        &self,
        flag: Option<&str>,
        config: Option<&Value<Scalar>>,
    ) -> Result<Option<PathBuf>, SettingsError> {
        self.get("state-dir", flag, config, parse_dir)
    }

    /// An error at `config`'s line when the key is set: for keys that the
    /// file has but this use of the section must not (`reason` says why).
    pub fn refuse(
        &self,
        key: &str,
        config: Option<&Value<Scalar>>,
        reason: &str,
    ) -> Result<(), SettingsError> {
        match config {
            None => Ok(()),
            Some(v) => Err(value_error(&self.layers.path, &self.key_label(key), v, reason).into()),
        }
    }

    /// `--key (VIDPIPE_KEY)`: the flag and, when it has one, its variable.
    fn flag_label(&self, key: &str) -> String {
        let command = super::args::command();
        let scope = match self.name {
            "" => Some(&command),
            name => command.find_subcommand(name),
        };
        let env = scope
            .and_then(|c| c.get_arguments().find(|a| a.get_long() == Some(key)))
            .and_then(|a| a.get_env())
            .map(|e| format!(" ({})", e.to_string_lossy()))
            .unwrap_or_default();
        format!("--{key}{env}")
    }

    /// `section.key` as written in the config file.
    fn key_label(&self, key: &str) -> String {
        match self.name {
            "" => key.to_string(),
            name => format!("{name}.{key}"),
        }
    }
}

/// A usage error for flags that do not go together.
pub fn usage(message: impl Into<String>) -> SettingsError {
    SettingsError::Usage(message.into())
}

/// The name clap gives a value of a choice flag (`fmp4`): how a typed
/// flag joins the layers below it, which hold text.
pub fn choice_name<T: clap::ValueEnum>(value: T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// A choice flag's value from a config file or variable, read as clap
/// reads the flag (any case); otherwise `must be ts or fmp4`.
pub fn parse_choice<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .map(|v| choice_name(v.clone()))
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => {
                format!("must be {} or {last}", rest.join(", "))
            }
            _ => format!("must be {}", names.join("")),
        }
    })
}

fn parse_count(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if n <= 2 => Ok(n),
        _ => Err(format!("`{s}` must be 0, 1 or 2")),
    }
}

/// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{s}` must be true or false")),
    }
}

/// A local directory (`--state-dir`): any path, made when needed.
pub fn parse_dir(s: &str) -> Result<std::path::PathBuf, String> {
    if s.trim().is_empty() {
        return Err("give a directory".into());
    }
    Ok(std::path::PathBuf::from(s))
}

/// An absolute URL such as `https://cdn.example/talk/`.
pub fn parse_url(s: &str) -> Result<String, String> {
    if s.contains("://") && !s.contains(char::is_whitespace) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not an absolute URL such as https://cdn.example/talk/"
        ))
    }
}

/// A whole number within `range`.
pub fn parse_number<T>(s: &str, range: std::ops::RangeInclusive<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} must be between {} and {}",
            range.start(),
            range.end()
        ))
    }
}

/// A duration in seconds within `range` (in seconds), named `what` in the
/// message.
pub fn parse_seconds_in(
    s: &str,
    what: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, String> {
    let secs = parse_seconds(s)?;
    if range.contains(&secs) {
        Ok(secs)
    } else {
        Err(format!(
            "{what} {secs}s must be between {} and {} seconds",
            range.start(),
            range.end()
        ))
    }
}

/// A segment duration, 1 to 60 seconds, in milliseconds.
pub fn parse_segment_ms(s: &str) -> Result<u32, String> {
    parse_seconds_in(s, "segment duration", 1.0..=60.0).map(|secs| (secs * 1000.0).round() as u32)
}

/// AAC bitrate, 32k to 512k.
pub fn parse_audio_bitrate(s: &str) -> Result<Bitrate, String> {
    let b = Bitrate::parse(s)?;
    if !(32_000..=512_000).contains(&b.0) {
        return Err(format!("audio bitrate {b} must be between 32k and 512k"));
    }
    Ok(b)
}

/// One of x264's presets.
pub fn parse_preset(s: &str) -> Result<String, String> {
    if PRESETS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown x264 preset `{s}` (one of: {})",
            PRESETS.join(", ")
        ))
    }
}

/// CPU threads in total, 1 to 1024.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    parse_number(s, 1..=1024)
}

/// Test support: layers and parsed arguments from a command line and a
/// config file's text.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use clap::Parser;

    /// Loads `yaml` as the config file under `args` (after `vidpipe`).
    pub fn layers(args: &[&str], yaml: &str) -> (Layers, Cli, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vidpipe.yaml");
        std::fs::write(&path, yaml).expect("write config");
        let mut argv = vec!["vidpipe", "--config", path.to_str().expect("utf8")];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let layers = Layers::load(&cli).expect("loads");
        (layers, cli, dir)
    }

    /// One subcommand's `settings` for `args` (after its name) under a
    /// config file of `yaml`; `pick` takes that subcommand's arguments.
    pub fn settings_of<A, R>(
        name: &str,
        args: &[&str],
        yaml: &str,
        pick: fn(&crate::cli::Command) -> Option<&A>,
        settings: fn(&Layers, &A) -> Result<R, crate::cli::SettingsError>,
    ) -> Result<R, crate::cli::SettingsError> {
        let mut argv = vec![name];
        argv.extend_from_slice(args);
        let (layers, cli, _dir) = layers(&argv, yaml);
        let args = pick(&cli.command).unwrap_or_else(|| panic!("not {name}"));
        settings(&layers, args)
    }

    /// The error message of a settings result that must fail.
    pub fn error<T>(result: Result<T, crate::cli::SettingsError>) -> String {
        match result {
            Ok(_) => panic!("expected a settings error"),
            Err(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::layers;
    use super::*;
    use clap::Parser;

    #[test]
    fn choices_read_as_clap_reads_them_and_name_every_value_when_wrong() {
        use crate::cli::args::{EngineArg, ScalingArg, SegmentFormatArg};
        assert_eq!(parse_choice::<ProgressMode>("JSON"), Ok(ProgressMode::Json));
        assert_eq!(choice_name(SegmentFormatArg::Fmp4), "fmp4");
        assert_eq!(
            parse_choice::<ProgressMode>("x"),
            Err("must be auto, bars, json or none".to_string())
        );
        assert_eq!(
            parse_choice::<SegmentFormatArg>("mkv"),
            Err("must be ts or fmp4".to_string())
        );
        assert_eq!(
            parse_choice::<ScalingArg>("up"),
            Err("must be cascade or direct".to_string())
        );
        assert_eq!(
            parse_choice::<EngineArg>("x").map(choice_name),
            Err("must be libav or command".to_string())
        );
    }

    /// One-shot actions are not defaults a config file could hold.
    const NOT_CONFIG_KEYS: &[&str] = &[
        "help",
        "version",
        "config",
        "status",
        "abort",
        "list-incomplete",
        "events-only",
        "finish",
    ];

    #[test]
    fn every_long_flag_has_a_config_key() {
        let command = super::super::args::command();
        let mut scopes: Vec<(String, &clap::Command)> = vec![(String::new(), &command)];
        scopes.extend(
            command
                .get_subcommands()
                .map(|c| (c.get_name().to_string(), c)),
        );
        let mut missing = Vec::new();
        for (section, cmd) in scopes {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if NOT_CONFIG_KEYS.contains(&long) || (arg.is_global_set() && !section.is_empty()) {
                    continue;
                }
                let yaml = if section.is_empty() {
                    format!("{long}: \"1\"\n")
                } else {
                    format!("{section}:\n  {long}: \"1\"\n")
                };
                if let Err(e) = ConfigFile::parse(std::path::Path::new("v.yaml"), &yaml) {
                    if e.to_string().contains("unknown field") {
                        missing.push(format!("{section}.{long}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "flags without a config key: {missing:?}"
        );
    }

    #[test]
    fn flag_beats_config_beats_default() {
        let progress = |args: &[&str], yaml: &str| layers(args, yaml).0.progress;
        assert_eq!(
            progress(&["probe", "x"], "progress: json\n"),
            ProgressMode::Json
        );
        let given = ["--progress", "none", "probe", "x"];
        assert_eq!(progress(&given, "progress: json\n"), ProgressMode::None);
        assert_eq!(progress(&["probe", "x"], ""), ProgressMode::Auto);
    }

    #[test]
    fn global_keys_name_themselves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.yaml");
        std::fs::write(&path, "quiet: 7\n").expect("write");
        let argv = [
            "vidpipe",
            "--config",
            path.to_str().expect("utf8"),
            "probe",
            "x",
        ];
        let cli = Cli::try_parse_from(argv).expect("parses");
        let err = Layers::load(&cli).err().expect("bad quiet").to_string();
        assert!(
            err.contains("v.yaml:1: quiet: `7` must be 0, 1 or 2"),
            "{err}"
        );
        std::fs::write(&path, "endpoint-url: nowhere\n").expect("write");
        let err = Layers::load(&cli).err().expect("bad url").to_string();
        assert!(err.contains("v.yaml:1: endpoint-url:"), "{err}");
    }

    #[test]
    fn config_counts_apply_unless_given_on_the_command_line() {
        let (loaded, _, _dir) = layers(&["probe", "x"], "quiet: 1\n");
        assert_eq!(loaded.quiet, 1);
        let (loaded, _, _dir) = layers(&["-v", "probe", "x"], "quiet: 1\n");
        assert_eq!((loaded.verbose, loaded.quiet), (1, 0));
    }

    #[test]
    fn flag_labels_carry_their_variable() {
        let (loaded, _, _dir) = layers(&["probe", "x"], "");
        let hls = loaded.section("transcode-hls");
        let err = hls
            .get("max-fps", Some("-5"), None, |s| {
                parse_number::<u32>(s, 1..=240)
            })
            .expect_err("bad");
        assert_eq!(
            err.to_string(),
            "--max-fps (VIDPIPE_MAX_FPS): `-5` is not a whole number"
        );
        let err = hls
            .get("delete-source", Some("x"), None, parse_bool)
            .expect_err("bad");
        assert!(err.to_string().starts_with("--delete-source: "), "{err}");
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_bool("Yes"), Ok(true));
        assert_eq!(parse_bool("off"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_number::<u32>("8", 1..=10), Ok(8));
        assert!(parse_number::<u32>("0", 1..=10).is_err());
        assert!(parse_number::<u32>("2.5", 1..=10).is_err());
        assert_eq!(parse_segment_ms("4s"), Ok(4000));
        assert_eq!(parse_segment_ms("1.5"), Ok(1500));
        assert!(parse_segment_ms("90s").is_err());
        assert!(parse_preset("warp").is_err());
        assert!(parse_audio_bitrate("8M").is_err());
    }
}
