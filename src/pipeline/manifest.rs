//! The shape of a pipeline manifest, and the placeholders its per-input
//! values use.
//!
//! A step is a one-key mapping whose key names a subcommand and whose value
//! is that subcommand's config section (the same struct the config file
//! uses), so every value keeps its line and is checked later by the
//! subcommand's own parser. Only the run's own keys (`tracks`, `attach`)
//! and the placeholders are known here.

use crate::config::{
    from_yaml, read_text, value_error, CaptionsConfig, CommentaryConfig, ConfigError, Setting,
    TranscodeHlsConfig, Value,
};
use serde::Deserialize;
use std::path::Path;

/// A whole manifest, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// Inputs as transcode-hls takes them: files, directories, URLs,
    /// `s3://` objects and prefixes.
    pub inputs: Value<Vec<Value<String>>>,
    /// Where each input's output goes: `OUTPUT/<stem>/`.
    pub output: Value<String>,
    /// The steps, in order.
    pub steps: Value<Vec<Value<Step>>>,
    /// Delete an `s3://` input once every step of it succeeded.
    #[serde(default)]
    pub delete_source: Setting,
}

/// One step: a subcommand and its config section.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// `transcode-hls` into `OUTPUT/<stem>/`.
    TranscodeHls(Option<Box<TranscodeHlsConfig>>),
    /// `captions` of the input's transcripts into `OUTPUT/<stem>/`.
    Captions(Option<Box<CaptionsConfig>>),
    /// `commentary` into `OUTPUT/<stem>/commentary/`.
    Commentary(Option<Box<CommentaryConfig>>),
}

impl Step {
    /// The subcommand's name, as the manifest writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Step::TranscodeHls(_) => "transcode-hls",
            Step::Captions(_) => "captions",
            Step::Commentary(_) => "commentary",
        }
    }

    /// Whether the step decodes the input itself (so that a remote input
    /// read by two such steps is worth fetching once).
    pub fn decodes_input(&self) -> bool {
        matches!(self, Step::TranscodeHls(_) | Step::Commentary(_))
    }
}

impl Manifest {
    /// Loads `path`. A file that cannot be read or parsed is an error with
    /// the file and line.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(path, &read_text(path)?)
    }

    /// Parses manifest text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let manifest: Manifest = from_yaml(path, text).map_err(|e| match e {
            ConfigError::Parse {
                path,
                line,
                message,
            } => ConfigError::Parse {
                path,
                line,
                message: message.replace("unknown variant", "unknown step"),
            },
            other => other,
        })?;
        if manifest.inputs.value.is_empty() {
            return Err(value_error(
                path,
                "inputs",
                &manifest.inputs,
                "list at least one input",
            ));
        }
        if manifest.steps.value.is_empty() {
            return Err(value_error(
                path,
                "steps",
                &manifest.steps,
                "list at least one step",
            ));
        }
        Ok(manifest)
    }
}

/// What `{stem}`, `{dir}` and `{name}` stand for with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// The input's file name without its extension.
    pub stem: String,
    /// The directory or `s3://bucket/prefix` the input is in.
    pub dir: String,
    /// The input's file name.
    pub name: String,
}

/// The placeholders a per-input value may use.
pub const PLACEHOLDERS: [&str; 3] = ["stem", "dir", "name"];

impl Placeholders {
    /// `template` with every placeholder replaced.
    pub fn expand(&self, template: &str) -> String {
        template
            .replace("{stem}", &self.stem)
            .replace("{dir}", &self.dir)
            .replace("{name}", &self.name)
    }
}

/// Checks that `template` uses only known placeholders, with balanced
/// braces; the reason names the first that is not.
pub fn check_placeholders(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("`}}` without `{{` in `{template}`"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without `}}` in `{template}`"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} (known: {{stem}}, {{dir}}, {{name}})"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(Path::new("p.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn steps_are_sections_with_their_lines() {
        let text = "inputs: [raw/, extra/keynote.mov]\noutput: out\nsteps:\n  - transcode-hls: {ladder: \"720:2800k\", segment-format: fmp4}\n  - captions:\n      tracks: \"{stem}.*.srt\"\n      attach: true\n  - commentary: {script: \"{stem}.commentary.yaml\"}\ndelete-source: true\n";
        let m = parse(text).expect("parses");
        assert_eq!(m.inputs.value.len(), 2);
        let names: Vec<&str> = m.steps.value.iter().map(|s| s.value.name()).collect();
        assert_eq!(names, ["transcode-hls", "captions", "commentary"]);
        let Step::Captions(Some(c)) = &m.steps.value[1].value else {
            panic!("captions step");
        };
        assert_eq!(c.tracks.as_ref().map(|v| v.referenced.line()), Some(6));
        assert!(m.delete_source.is_some());
    }

    #[test]
    fn a_step_without_settings_is_fine() {
        let m = parse("inputs: [a.mp4]\noutput: out\nsteps:\n  - transcode-hls:\n").expect("ok");
        assert!(matches!(m.steps.value[0].value, Step::TranscodeHls(None)));
    }

    #[test]
    fn unknown_steps_and_keys_name_their_line() {
        let e =
            parse("inputs: [a.mp4]\noutput: out\nsteps:\n  - transcode: {}\n").expect_err("bad");
        assert!(e.starts_with("p.yaml:4:"), "{e}");
        assert!(e.contains("unknown step `transcode`"), "{e}");
        let e =
            parse("inputs: [a.mp4]\noutput: out\nsteps:\n  - transcode-hls:\n      ladderr: x\n")
                .expect_err("bad");
        assert!(e.starts_with("p.yaml:5:") && e.contains("ladderr"), "{e}");
        let e = parse("inputs: [a.mp4]\noutput: out\nsteps: []\nextra: 1\n").expect_err("bad");
        assert!(e.starts_with("p.yaml:4:") && e.contains("extra"), "{e}");
        let e = parse("inputs: []\noutput: out\nsteps:\n  - captions: {}\n").expect_err("bad");
        assert!(e.starts_with("p.yaml:1: inputs:"), "{e}");
    }

    #[test]
    fn placeholders_expand_and_unknown_ones_are_named() {
        let p = Placeholders {
            stem: "talk".into(),
            dir: "s3://media/raw".into(),
            name: "talk.mp4".into(),
        };
        assert_eq!(p.expand("{dir}/{stem}.*.srt"), "s3://media/raw/talk.*.srt");
        assert_eq!(p.expand("{name}.yaml"), "talk.mp4.yaml");
        assert!(check_placeholders("{stem}.en.srt").is_ok());
        let e = check_placeholders("{basename}.srt").expect_err("unknown");
        assert!(e.contains("{basename}"), "{e}");
        assert!(check_placeholders("{stem.srt").is_err());
        assert!(check_placeholders("stem}.srt").is_err());
    }
}
