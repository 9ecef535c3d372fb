//! One step of a pipeline: validated once from its manifest section, then
//! made ready for each input (its files found, its subcommand's settings
//! resolved, a fingerprint of both) and run as its subcommand runs.
//!
//! A step is its subcommand, not a copy of it: the section goes through
//! the subcommand's own `settings` (as the config file would, with the
//! manifest's lines), and the run goes through the subcommand's entry for
//! one prepared input.

use super::super::captions::{self, CaptionsRun};
use super::super::commentary::{self, CommentaryRun};
use super::super::context::Ctx;
use super::super::error::SettingsError;
use super::super::layers::{parse_bool, Layers};
use super::super::transcode::{self, TranscodeRun};
use super::super::{Cli, Command, Outcome};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vidpipe::config::{value_error, ConfigFile, Scalar, Value};
use vidpipe::inputs::InputItem;
use vidpipe::pipeline::files::{self, Beside};
use vidpipe::pipeline::manifest::{check_placeholders, Placeholders, Step};
use vidpipe::progress::{Event, Position, Reporter, StepEvent};
use vidpipe::storage::{Destination, Location, S3Session};

/// Where a step writes, below the input's `OUTPUT/<stem>/`.
const CAPTIONS_DIR: &str = "captions";
const COMMENTARY_DIR: &str = "commentary";

/// A step as the manifest declares it, checked.
pub struct PlannedStep {
    /// Its place in the manifest, from 1.
    pub position: usize,
    /// Its subcommand.
    pub name: &'static str,
    kind: Kind,
    /// The global settings with the step's section as the config file.
    layers: Layers,
    /// `--threads` for the step when `--jobs` divides the cores.
    threads: Option<usize>,
}

/// What a step needs beyond its section.
enum Kind {
    Transcode,
    /// The transcripts' pattern; whether to add them to the master.
    Captions {
        tracks: String,
        attach: bool,
    },
    /// The script's pattern, or `--auto`.
    Commentary {
        script: Option<String>,
    },
}

/// The step's subcommand settings for one input, ready to run.
pub enum Ready {
    Transcode(Box<TranscodeRun>),
    Captions(Box<CaptionsRun>),
    Commentary(Box<CommentaryRun>),
}

/// What a step will do with one input.
pub enum Action {
    /// Run (the step's own state may make it resume).
    Run {
        ready: Ready,
        /// What it runs with, to recognise it as complete next time.
        fingerprint: String,
    },
    /// Not for this input: its files are not there.
    Skip(String),
    /// Its settings do not hold for this input (a bad script).
    Fail(String),
}

/// One input as a step sees it.
pub struct StepInput<'a> {
    /// The input (its `open` may be a local copy fetched once).
    pub item: &'a InputItem,
    /// Where the input stands in its batch.
    pub position: Position,
    /// What its placeholders stand for.
    pub vars: &'a Placeholders,
    /// Where it lives, for the files beside it.
    pub beside: &'a Beside,
    /// The pipeline's output.
    pub output: &'a Location,
    /// The input's scratch directory (its fetched files).
    pub scratch: &'a Path,
    /// The S3 connection, when inputs or output need one.
    pub session: Option<&'a S3Session>,
}

/// Where a commentary's lines come from.
#[derive(Clone, Copy)]
enum Lines<'a> {
    /// This input's script.
    Script(&'a Path),
    /// `--auto` (standing in for a per-input script while validating).
    Auto,
    /// Whatever the section says.
    Section,
}

/// How a step's run ended.
pub enum Ended {
    Done,
    Failed(String),
    Interrupted,
}

impl PlannedStep {
    /// Checks a step's section with its subcommand's own settings (values,
    /// keys only a pipeline step may or may not have, placeholders).
    pub fn new(
        position: usize,
        step: Value<Step>,
        base: &Layers,
        threads: Option<usize>,
    ) -> Result<Self, SettingsError> {
        let path = base.path().to_path_buf();
        let name = step.value.name();
        let line = step.referenced.line();
        let at = |reason: &str| vidpipe::config::ConfigError::Parse {
            path: path.clone(),
            line: format!(":{line}"),
            message: format!("{name}: {reason}"),
        };
        let refuse = |key: &str, value: &Option<Value<Scalar>>, why: &str| match value {
            Some(v) => Err(SettingsError::from(value_error(
                &path,
                &format!("{name}.{key}"),
                v,
                why,
            ))),
            None => Ok(()),
        };
        let pipeline_output = "the pipeline's output: gives each input OUTPUT/<stem>/";
        let (kind, file) = match step.value {
            Step::TranscodeHls(section) => {
                let section = *section.unwrap_or_default();
                refuse("output", &section.output, pipeline_output)?;
                refuse("shard", &section.shard, "give --shard to `vidpipe run`")?;
                let whole = "use the pipeline's delete-source: (it waits for every step)";
                refuse("delete-source", &section.delete_source, whole)?;
                let file = ConfigFile {
                    transcode_hls: Some(section),
                    ..ConfigFile::default()
                };
                (Kind::Transcode, file)
            }
            Step::Captions(section) => {
                let mut section = *section.unwrap_or_default();
                refuse("output", &section.output, pipeline_output)?;
                let attach_instead = "use attach: true to add the captions to the input's master";
                refuse("master", &section.master, attach_instead)?;
                let vod = "a pipeline publishes finished transcripts; use `vidpipe captions --follow` for live";
                refuse("follow", &section.follow, vod)?;
                let tracks = section.tracks.take().ok_or_else(|| {
                    at("give tracks:, the transcripts of each input (e.g. \"{stem}.*.srt\")")
                })?;
                placeholders_at(&path, "captions.tracks", &tracks)?;
                let attach = match section.attach.take() {
                    None => true,
                    Some(v) => parse_bool(&v.value.to_string())
                        .map_err(|r| value_error(&path, "captions.attach", &v, &r))?,
                };
                let file = ConfigFile {
                    captions: Some(section),
                    ..ConfigFile::default()
                };
                let tracks = tracks.value.to_string();
                (Kind::Captions { tracks, attach }, file)
            }
            Step::Commentary(section) => {
                let mut section = *section.unwrap_or_default();
                refuse("output", &section.output, pipeline_output)?;
                let script = section.script.take();
                if let Some(script) = &script {
                    placeholders_at(&path, "commentary.script", script)?;
                    fixed_file_exists(&path, "commentary.script", script)?;
                    let either = "script: and auto: do not go together";
                    refuse("auto", &section.auto, either)?;
                }
                let file = ConfigFile {
                    commentary: Some(section),
                    ..ConfigFile::default()
                };
                let script = script.map(|s| s.value.to_string());
                (Kind::Commentary { script }, file)
            }
        };
        let planned = PlannedStep {
            position,
            name,
            kind,
            layers: base.with_file(&path, file),
            threads,
        };
        planned.validate()?;
        Ok(planned)
    }

    /// Runs the subcommand's settings once with stand-in per-input
    /// arguments, so a bad value stops the run before any work.
    fn validate(&self) -> Result<(), SettingsError> {
        let output = Location::Local(PathBuf::from("out"));
        let stand_in = Path::new("input.srt");
        let lines = match &self.kind {
            // A script is read per input; `--auto` stands in for it here.
            Kind::Commentary { script: Some(_) } => Lines::Auto,
            _ => Lines::Section,
        };
        self.resolve(("input.mp4", "input"), &output, &[stand_in], lines)
            .map(|_| ())
    }

    /// `<position>:<name>`, the step's key in an input's record.
    pub fn key(&self) -> String {
        format!("{}:{}", self.position, self.name)
    }

    /// Whether the step decodes the input itself.
    pub fn decodes_input(&self) -> bool {
        matches!(self.kind, Kind::Transcode | Kind::Commentary { .. })
    }

    /// What the step would do with `input`.
    pub fn prepare(&self, input: &StepInput<'_>) -> Action {
        let found = |pattern: &str| {
            let pattern = input.vars.expand(pattern);
            files::find(&pattern, input.beside, input.session, input.scratch)
                .map(|found| (pattern, found))
        };
        let files = match &self.kind {
            Kind::Transcode | Kind::Commentary { script: None } => Vec::new(),
            Kind::Captions {
                tracks: pattern, ..
            }
            | Kind::Commentary {
                script: Some(pattern),
            } => match found(pattern) {
                Ok((_, files)) if !files.is_empty() => files,
                Ok((pattern, _)) => {
                    let what = match self.kind {
                        Kind::Captions { .. } => "transcript",
                        _ => "commentary script",
                    };
                    return Action::Skip(format!("no {what} matches `{pattern}`"));
                }
                Err(e) => return Action::Fail(format!("cannot look for `{pattern}`: {e}")),
            },
        };
        let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let lines = match (&self.kind, files.first()) {
            (Kind::Commentary { script: Some(_) }, Some(script)) => Lines::Script(script),
            _ => Lines::Section,
        };
        let item = input.item;
        match self.resolve((&item.source, &item.stem), input.output, &files, lines) {
            Ok(ready) => match fingerprint(&ready, &files) {
                Ok(fingerprint) => Action::Run { ready, fingerprint },
                Err(e) => Action::Fail(e),
            },
            Err(e) => Action::Fail(e.to_string()),
        }
    }

    /// The subcommand's settings for the input `source` whose output is
    /// `<stem>/`: its arguments as a person would type them, with the
    /// step's section as the config.
    fn resolve(
        &self,
        (source, stem): (&str, &str),
        output: &Location,
        files: &[&Path],
        lines: Lines<'_>,
    ) -> Result<Ready, SettingsError> {
        let below = output.join(stem);
        let mut argv: Vec<String> = vec!["vidpipe".into(), self.name.into()];
        match &self.kind {
            Kind::Transcode => argv.extend([source.into(), "-o".into(), output.to_string()]),
            Kind::Captions { attach, .. } => {
                argv.extend(files.iter().map(|f| f.display().to_string()));
                argv.extend(["-o".into(), below.join(CAPTIONS_DIR).to_string()]);
                if *attach {
                    argv.extend(["--master".into(), master_of(&below)]);
                }
            }
            Kind::Commentary { .. } => {
                argv.extend([
                    source.into(),
                    "-o".into(),
                    below.join(COMMENTARY_DIR).to_string(),
                ]);
                match lines {
                    Lines::Script(script) => {
                        argv.extend(["--script".into(), script.display().to_string()])
                    }
                    Lines::Auto => argv.push("--auto".into()),
                    Lines::Section => {}
                }
            }
        }
        if let Some(threads) = self.threads_flag() {
            argv.extend(["--threads".into(), threads.to_string()]);
        }
        let cli = Cli::try_parse_from(&argv)
            .map_err(|e| SettingsError::Usage(format!("{}: {}", self.name, e.kind())))?;
        Ok(match cli.command {
            Command::TranscodeHls(mut args) => {
                // The pipeline shards and deletes sources itself.
                args.shard = None;
                args.delete_source = false;
                Ready::Transcode(Box::new(transcode::settings(&self.layers, &args)?))
            }
            Command::Captions(args) => {
                Ready::Captions(Box::new(captions::settings(&self.layers, &args)?))
            }
            Command::Commentary(args) => {
                Ready::Commentary(Box::new(commentary::settings(&self.layers, &args)?))
            }
            _ => {
                return Err(SettingsError::Usage(format!(
                    "{}: not a pipeline step",
                    self.name
                )))
            }
        })
    }

    /// `--threads` for this step's share of the cores, unless the step
    /// has no such setting or its section sets it.
    fn threads_flag(&self) -> Option<usize> {
        let file = self.layers.file();
        let set_by_section = match self.kind {
            Kind::Transcode => file.transcode_hls.as_ref().map(|s| &s.threads),
            Kind::Commentary { .. } => file.commentary.as_ref().map(|s| &s.threads),
            Kind::Captions { .. } => return None,
        };
        match set_by_section {
            Some(Some(_)) => None,
            _ => self.threads,
        }
    }

    /// Whether the step's output for the input under `<stem>/` is in
    /// place (asked only when the input's record says it succeeded).
    pub fn output_present(&self, dest: &dyn Destination, stem: &str) -> bool {
        dest.exists(&match self.kind {
            Kind::Transcode => format!("{stem}/master.m3u8"),
            Kind::Captions { .. } => format!("{stem}/{CAPTIONS_DIR}/captions.m3u8"),
            Kind::Commentary { .. } => format!("{stem}/{COMMENTARY_DIR}/commentary.mp4"),
        })
    }

    /// Whether the step's own state beside the output says it will
    /// continue earlier work.
    pub fn resumes(&self, dest: &dyn Destination, stem: &str) -> bool {
        match self.kind {
            Kind::Transcode => dest.exists(&format!("{stem}/.vidpipe/checkpoint.json")),
            Kind::Commentary { .. } => dest.exists(&format!(
                "{stem}/{COMMENTARY_DIR}/.vidpipe/commentary/state.json"
            )),
            Kind::Captions { .. } => false,
        }
    }

    /// Runs the step on `input` as its subcommand would, its events tagged
    /// with the input and the step.
    pub fn run(&self, ready: &Ready, input: &StepInput<'_>, ctx: &Ctx) -> Ended {
        let tagger = Arc::new(Tagger {
            inner: ctx.reporter.clone(),
            input: input.item.source.clone(),
            step: self.name.to_string(),
            last_error: std::sync::Mutex::new(None),
        });
        let step_ctx = ctx.scoped(tagger.clone());
        let outcome = match ready {
            Ready::Transcode(run) => match step_ctx.destination(&run.output) {
                Ok(dest) => match transcode::transcode_one(
                    run,
                    &step_ctx,
                    (input.item, input.position),
                    dest.as_ref(),
                    input.session,
                ) {
                    Ok(true) => Ok(Outcome::Success),
                    Ok(false) => Ok(Outcome::SomeFailed),
                    Err(outcome) => Ok(outcome),
                },
                Err(e) => Err(e),
            },
            Ready::Captions(run) => captions::run(run, &step_ctx),
            Ready::Commentary(run) => commentary::commentate_item(run, &step_ctx, input.item),
        };
        match outcome {
            Ok(Outcome::Success) => Ended::Done,
            Ok(Outcome::Interrupted) => Ended::Interrupted,
            Ok(Outcome::SomeFailed) => {
                Ended::Failed(tagger.last_error().unwrap_or_else(|| "failed".into()))
            }
            Err(e) => Ended::Failed(e.to_string()),
        }
    }
}

/// The master playlist transcode-hls writes for an input, as `--master`
/// takes it.
fn master_of(below: &Location) -> String {
    match below {
        Location::Local(dir) => dir.join("master.m3u8").display().to_string(),
        Location::S3 { .. } => format!("{below}master.m3u8"),
    }
}

/// A per-input value must use only known placeholders.
fn placeholders_at(path: &Path, key: &str, value: &Value<Scalar>) -> Result<(), SettingsError> {
    check_placeholders(&value.value.to_string())
        .map_err(|r| value_error(path, key, value, &r).into())
}

/// A per-input file named without placeholders or wildcards by an
/// absolute path is the same for every input: it must exist now.
fn fixed_file_exists(path: &Path, key: &str, value: &Value<Scalar>) -> Result<(), SettingsError> {
    let text = value.value.to_string();
    let fixed = !text.contains('{') && !files::is_pattern(&text) && Path::new(&text).is_absolute();
    if fixed && !Path::new(&text).is_file() {
        return Err(value_error(path, key, value, &format!("{text}: no such file")).into());
    }
    Ok(())
}

/// What a prepared step runs with: its validated settings, and the content
/// of the files it reads.
fn fingerprint(ready: &Ready, files: &[&Path]) -> Result<String, String> {
    let settings = match ready {
        Ready::Transcode(run) => vidpipe::fingerprint::fingerprint(&run.settings),
        Ready::Captions(run) => format!("{:?}|{:?}", run.settings, run.master.is_some()),
        Ready::Commentary(run) => vidpipe::fingerprint::fingerprint(&(&run.settings, &run.lines)),
    };
    let mut contents = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        contents.push((name, vidpipe::fingerprint::fingerprint(&bytes)));
    }
    Ok(vidpipe::fingerprint::fingerprint(&(settings, contents)))
}

/// Tags a step's events with the input and the step, and remembers the
/// last error it reported (the step's reason in the summary).
struct Tagger {
    inner: Arc<dyn Reporter>,
    input: String,
    step: String,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Tagger {
    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Reporter for Tagger {
    fn report(&self, event: Event) {
        if let Event::Error { message, .. } = &event {
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(message.clone());
            }
        }
        self.inner.report(Event::Step(StepEvent {
            input: self.input.clone(),
            step: self.step.clone(),
            event: Box::new(event),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::layers::testing::layers;
    use vidpipe::pipeline::manifest::Manifest;

    /// The steps of a manifest whose `steps:` are `steps`.
    fn planned(steps: &str, threads: Option<usize>) -> Vec<PlannedStep> {
        let text = format!("inputs: [a.mp4]\noutput: out\nsteps:\n{steps}");
        let manifest = Manifest::parse(Path::new("p.yaml"), &text).expect("manifest");
        let (base, _, _dir) = layers(&["probe", "x"], "");
        let base = base.with_file(Path::new("p.yaml"), ConfigFile::default());
        manifest
            .steps
            .value
            .into_iter()
            .enumerate()
            .map(|(i, step)| PlannedStep::new(i + 1, step, &base, threads).expect("valid"))
            .collect()
    }

    fn transcode_threads(step: &PlannedStep) -> usize {
        let output = Location::Local("out".into());
        match step.resolve(("a.mp4", "a"), &output, &[], Lines::Section) {
            Ok(Ready::Transcode(run)) => run.settings.threads,
            _ => panic!("a transcode"),
        }
    }

    #[test]
    fn jobs_divide_the_threads_unless_a_step_sets_its_own() {
        let steps = planned(
            "  - transcode-hls: {}\n  - transcode-hls: {threads: 3}\n",
            Some(1),
        );
        assert_eq!(transcode_threads(&steps[0]), 1);
        assert_eq!(transcode_threads(&steps[1]), 3);
        let steps = planned("  - transcode-hls: {}\n", None);
        assert_eq!(transcode_threads(&steps[0]), 0, "all cores");
    }

    #[test]
    fn captions_go_beside_the_package_and_attach_to_its_master() {
        let steps = planned("  - captions: {tracks: \"{stem}.*.srt\"}\n", None);
        let output = Location::parse("s3://media/vod").expect("location");
        let track = Path::new("talk.en.srt");
        match steps[0].resolve(
            ("s3://media/raw/talk.mp4", "talk"),
            &output,
            &[track],
            Lines::Section,
        ) {
            Ok(Ready::Captions(run)) => {
                assert_eq!(run.output.to_string(), "s3://media/vod/talk/captions/");
                let (master, _) = run.master.as_ref().expect("attached by default");
                assert_eq!(master.dir.to_string(), "s3://media/vod/talk/");
                assert_eq!(master.name, "master.m3u8");
            }
            _ => panic!("captions"),
        }
    }

    #[test]
    fn a_step_without_its_files_key_is_named_by_line() {
        let text = "inputs: [a.mp4]\noutput: out\nsteps:\n  - transcode-hls: {}\n  - captions: {attach: false}\n";
        let manifest = Manifest::parse(Path::new("p.yaml"), text).expect("manifest");
        let (base, _, _dir) = layers(&["probe", "x"], "");
        let base = base.with_file(Path::new("p.yaml"), ConfigFile::default());
        let step = manifest.steps.value.into_iter().nth(1).expect("captions");
        let e = PlannedStep::new(2, step, &base, None)
            .err()
            .expect("no tracks")
            .to_string();
        assert!(e.starts_with("p.yaml:5: captions: give tracks:"), "{e}");
    }
}
