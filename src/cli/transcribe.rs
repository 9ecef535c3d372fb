//! `vidpipe transcribe`: speech to timed transcripts (the engine is
//! [`vidpipe::transcribe`]), one per input, in the formats `captions`
//! reads.

use super::context::{batch_outcome, count, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{choice_name, parse_choice, parse_number, usage, Layers};
use super::{EngineArg, Outcome, TranscribeArgs};
use std::path::PathBuf;
use std::time::Duration;
use vidpipe::captions::live::end_marker_of;
use vidpipe::captions::parse::Format;
use vidpipe::captions::write::{block, head, render, tail};
use vidpipe::inputs::{expand, InputItem};
use vidpipe::language::language_tag;
use vidpipe::media::speech::SpeechModel;
use vidpipe::progress::Event;
use vidpipe::storage::Location;
use vidpipe::transcribe::command::CommandEngine;
use vidpipe::transcribe::follow::follow;
use vidpipe::transcribe::{decode, transcribe, Engine, TranscribeError, TranscribeSettings};
use vidpipe::units::parse_duration;

/// Where Debian's `pocketsphinx-en-us` puts the US English model.
pub const DEFAULT_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";

/// Everything `transcribe` needs to run.
#[derive(Debug, Clone)]
pub struct TranscribeRun {
    /// INPUT arguments as typed.
    pub inputs: Vec<String>,
    /// Where transcripts go.
    pub output: Output,
    /// Transcript format.
    pub format: Format,
    /// Language tag, in file names.
    pub language: String,
    /// The engine's settings.
    pub settings: TranscribeSettings,
    /// Live: follow the growing input, giving up after this long without
    /// new data.
    pub follow: Option<Duration>,
}

/// Where transcripts are written.
#[derive(Debug, Clone)]
pub enum Output {
    /// A directory or prefix: `<stem>.<lang>.<ext>` inside.
    Dir(Location),
    /// One file (one input only): its directory and name.
    File(Location, String),
}

/// Validated settings for `transcribe`.
pub fn settings(layers: &Layers, args: &TranscribeArgs) -> Result<TranscribeRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().transcribe.as_ref().unwrap_or(&empty);
    let s = layers.section("transcribe");
    let dest = s
        .get("output", args.output.as_deref(), cfg.output.as_ref(), |v| {
            Ok(v.to_string())
        })?
        .ok_or_else(|| {
            usage("no output: pass -o DEST (or set VIDPIPE_TRANSCRIBE_OUTPUT, or transcribe.output in the config file)")
        })?;
    let format = s.get(
        "format",
        args.format.map(choice_name).as_deref(),
        cfg.format.as_ref(),
        parse_format,
    )?;
    let (output, format) = output_of(&dest, format, args.inputs.len())?;
    let language = s.or(
        "language",
        args.language.as_deref(),
        cfg.language.as_ref(),
        "en".to_string(),
        language_tag,
    )?;
    let engine = s.or(
        "engine",
        args.engine.map(choice_name).as_deref(),
        cfg.engine.as_ref(),
        EngineArg::Libav,
        |v| parse_choice::<EngineArg>(v).map_err(|e| format!("`{v}` {e}")),
    )?;
    let asr_cmd = s.get(
        "asr-cmd",
        args.asr_cmd.as_deref(),
        cfg.asr_cmd.as_ref(),
        |v| Ok(v.to_string()),
    )?;
    let asr_timeout = s.or(
        "asr-timeout",
        args.asr_timeout.as_deref(),
        cfg.asr_timeout.as_ref(),
        Duration::from_secs(600),
        parse_duration,
    )?;
    let model_dir = s.get(
        "model-dir",
        args.model_dir.as_deref(),
        cfg.model_dir.as_ref(),
        |v| Ok(PathBuf::from(v)),
    )?;
    let engine = match engine {
        EngineArg::Libav => {
            if asr_cmd.is_some() {
                return Err(usage("--asr-cmd needs --engine command"));
            }
            let dir = model_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
            let model = SpeechModel::find(&dir).map_err(|reason| SettingsError::Flag {
                flag: "--model-dir (VIDPIPE_TRANSCRIBE_MODEL_DIR)".into(),
                reason: if dir == std::path::Path::new(DEFAULT_MODEL_DIR) {
                    format!("{reason} (install Debian's pocketsphinx-en-us, or give --model-dir)")
                } else {
                    reason
                },
            })?;
            Engine::Libav(model)
        }
        EngineArg::Command => {
            if model_dir.is_some() {
                return Err(usage(
                    "--model-dir is for the libav engine; an --asr-cmd names its own model",
                ));
            }
            let template =
                asr_cmd.ok_or_else(|| usage("--engine command needs --asr-cmd TEMPLATE"))?;
            Engine::Command(
                CommandEngine::new(&template, asr_timeout).map_err(|reason| {
                    SettingsError::Flag {
                        flag: "--asr-cmd (VIDPIPE_ASR_CMD)".into(),
                        reason,
                    }
                })?,
            )
        }
    };
    let chunk = s.or(
        "chunk",
        args.chunk.as_deref(),
        cfg.chunk.as_ref(),
        Duration::from_secs(30),
        |v| {
            let d = parse_duration(v)?;
            if d < Duration::from_secs(2) || d > Duration::from_secs(3600) {
                return Err(format!("chunk {v} must be between 2s and 1h"));
            }
            Ok(d)
        },
    )?;
    let follow = s.switch("follow", args.follow, cfg.follow.as_ref())?;
    let idle = s.or(
        "idle",
        args.idle.as_deref(),
        cfg.idle.as_ref(),
        Duration::from_secs(10),
        parse_duration,
    )?;
    if follow {
        if args.inputs.len() > 1 {
            return Err(usage("--follow follows one recording: give one INPUT"));
        }
        if matches!(&output, Output::Dir(l) | Output::File(l, _) if l.is_s3()) {
            return Err(usage(
                "--follow appends to a local transcript (which captions --follow reads); give a local -o",
            ));
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = s.or(
        "jobs",
        args.jobs.as_deref(),
        cfg.jobs.as_ref(),
        cores,
        |v| parse_number(v, 1..=256),
    )?;
    Ok(TranscribeRun {
        inputs: args.inputs.clone(),
        output,
        format,
        language,
        settings: TranscribeSettings {
            engine,
            chunk,
            jobs,
        },
        follow: follow.then_some(idle),
    })
}

/// DEST as a directory, or as a file when it has a transcript extension;
/// the format from `--format`, else the file's extension, else SRT.
fn output_of(
    dest: &str,
    format: Option<Format>,
    inputs: usize,
) -> Result<(Output, Format), SettingsError> {
    let flag = |reason: String| SettingsError::Flag {
        flag: "--output (VIDPIPE_TRANSCRIBE_OUTPUT)".into(),
        reason,
    };
    let trimmed = dest.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => (".", trimmed),
    };
    let as_file = if dest.ends_with('/') {
        None
    } else {
        Format::of(std::path::Path::new(name)).ok()
    };
    let Some(file_format) = as_file else {
        return Ok((
            Output::Dir(Location::parse(dest).map_err(flag)?),
            format.unwrap_or(Format::Srt),
        ));
    };
    if inputs > 1 {
        return Err(usage(format!(
            "-o {dest} names one file but {inputs} inputs were given: give a directory"
        )));
    }
    if format.is_some_and(|f| f != file_format) {
        return Err(usage(format!(
            "--format does not match the extension of -o {dest}"
        )));
    }
    let parent = if parent.is_empty() { "/" } else { parent };
    Ok((
        Output::File(Location::parse(parent).map_err(flag)?, name.to_string()),
        file_format,
    ))
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "srt" => Ok(Format::Srt),
        "vtt" | "webvtt" => Ok(Format::Vtt),
        "json" => Ok(Format::Json),
        _ => Err(format!("`{s}` must be srt, vtt or json")),
    }
}

fn extension(f: Format) -> &'static str {
    match f {
        Format::Srt => "srt",
        Format::Vtt => "vtt",
        Format::Json => "json",
    }
}

/// Transcribes every input; one failing does not stop the others.
pub fn run(run: &TranscribeRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let location = match &run.output {
        Output::Dir(l) | Output::File(l, _) => l,
    };
    let needs_s3 = location.is_s3() || run.inputs.iter().any(|i| i.starts_with("s3://"));
    let session = ctx.s3_if(needs_s3)?;
    let (items, problems) = expand(&run.inputs, session.as_deref());
    for p in &problems {
        ctx.fail(&p.source, &p.reason);
    }
    if items.is_empty() && problems.is_empty() {
        ctx.fail(&run.inputs.join(", "), "no media files found");
        return Ok(Outcome::SomeFailed);
    }
    let dest = ctx.destination(location)?;
    let mut failed = problems.len();
    for item in &items {
        let key = match &run.output {
            Output::File(_, name) => name.clone(),
            Output::Dir(_) => format!("{}.{}.{}", item.stem, run.language, extension(run.format)),
        };
        let done = match (run.follow, location) {
            (Some(idle), Location::Local(dir)) => follow_one(run, ctx, item, &dir.join(&key), idle),
            _ => transcribe_one(run, ctx, item, dest.as_ref(), &key),
        };
        match done {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(outcome) => return Ok(outcome),
        }
    }
    Ok(batch_outcome(failed))
}

/// One input. `Ok(false)` when it failed (already reported); `Err` stops
/// the batch (interrupted).
fn transcribe_one(
    run: &TranscribeRun,
    ctx: &Ctx,
    item: &InputItem,
    dest: &dyn vidpipe::storage::Destination,
    key: &str,
) -> Result<bool, Outcome> {
    let fail = |message: String| {
        ctx.fail(&item.source, &message);
        Ok(false)
    };
    let source = match ctx.readable(&item.open, &item.source) {
        Ok(source) => source,
        Err(Outcome::Interrupted) => return Err(Outcome::Interrupted),
        Err(_) => return Ok(false),
    };
    let samples = match decode(source.open(), &ctx.cancel) {
        Ok(Some(samples)) => samples,
        Ok(None) => return Err(Outcome::Interrupted),
        Err(TranscribeError::NoAudio) => {
            return fail("has no audio stream: there is no speech to transcribe".into())
        }
        Err(e) => return fail(e.to_string()),
    };
    let transcript = match transcribe(
        &item.source,
        &samples,
        &run.settings,
        ctx.reporter(),
        &ctx.cancel,
    ) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    if transcript.cues.is_empty() && transcript.is_complete() {
        ctx.note(
            &item.source,
            "no speech was recognised: the transcript has no cues",
        );
    }
    let text = render(run.format, &transcript.cues);
    if let Err(e) = dest.put(key, text.as_bytes()) {
        return fail(format!(
            "cannot write {}: {}",
            dest.describe(key),
            vidpipe::inputs::describe_io(&e)
        ));
    }
    let path = dest.describe(key);
    if !transcript.is_complete() {
        ctx.say(format!(
            "interrupted: {path} holds the first {} of {} ({} s of {} s); run again to transcribe it all",
            count(transcript.chunks as u64, "chunk"),
            transcript.planned,
            transcript.covered_ms / 1000,
            transcript.total_ms / 1000
        ));
        return Err(Outcome::Interrupted);
    }
    ctx.reporter.report(Event::TranscriptDone {
        input: item.source.clone(),
        path: path.clone(),
        cues: transcript.cues.len(),
        chunks: transcript.chunks,
    });
    ctx.say(format!(
        "transcribed {} -> {path} ({})",
        item.source,
        count(transcript.cues.len() as u64, "cue")
    ));
    Ok(true)
}

/// One growing input: cues appended to `path` as they are recognised.
fn follow_one(
    run: &TranscribeRun,
    ctx: &Ctx,
    item: &InputItem,
    path: &std::path::Path,
    idle: Duration,
) -> Result<bool, Outcome> {
    let fail = |message: String| {
        ctx.fail(&item.source, &message);
        Ok(false)
    };
    let mut transcript = match LiveTranscript::create(path, run.format) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot write {}: {e}", path.display())),
    };
    let followed = follow(
        &item.open,
        &item.source,
        &run.settings,
        idle,
        ctx.reporter(),
        &ctx.cancel,
        &mut |cues| transcript.append(cues),
    );
    let interrupted = ctx.cancel.load(std::sync::atomic::Ordering::SeqCst);
    let finished = transcript.finish(!interrupted);
    let result = match followed {
        Ok(result) => result,
        Err(TranscribeError::NoAudio) => {
            let _ = std::fs::remove_file(path);
            return fail("has no audio stream: there is no speech to transcribe".into());
        }
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = finished {
        return fail(format!("cannot write {}: {e}", path.display()));
    }
    if interrupted {
        ctx.say(format!(
            "interrupted: {} holds what was recognised of the first {} s",
            path.display(),
            result.covered_ms / 1000
        ));
        return Err(Outcome::Interrupted);
    }
    ctx.reporter.report(Event::TranscriptDone {
        input: item.source.clone(),
        path: path.display().to_string(),
        cues: result.cues.len(),
        chunks: result.chunks,
    });
    Ok(true)
}

/// A local transcript that grows block by block (what `captions
/// --follow` reads), ended with the format's tail and a `FILE.end`
/// marker.
struct LiveTranscript {
    file: std::fs::File,
    path: PathBuf,
    format: Format,
    written: usize,
}

impl LiveTranscript {
    fn create(path: &std::path::Path, format: Format) -> std::io::Result<Self> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(end_marker_of(path));
        let mut file = std::fs::File::create(path)?;
        file.write_all(head(format).as_bytes())?;
        file.flush()?;
        Ok(LiveTranscript {
            file,
            path: path.to_path_buf(),
            format,
            written: 0,
        })
    }

    /// Appends `cues` as whole blocks, in one write.
    fn append(&mut self, cues: &[vidpipe::captions::cue::Cue]) -> std::io::Result<()> {
        use std::io::Write;
        if cues.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for cue in cues {
            self.written += 1;
            text.push_str(&block(self.format, self.written, cue));
        }
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }

    /// Writes the tail; with `ended`, leaves the end marker too.
    fn finish(mut self, ended: bool) -> std::io::Result<()> {
        use std::io::Write;
        self.file.write_all(tail(self.format).as_bytes())?;
        self.file.sync_all()?;
        if ended {
            std::fs::write(end_marker_of(&self.path), b"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::layers::testing::layers;
    use crate::cli::Command;

    fn run_of(args: &[&str], yaml: &str) -> Result<TranscribeRun, SettingsError> {
        let (layers, cli, _dir) = layers(args, yaml);
        match &cli.command {
            Command::Transcribe(a) => settings(&layers, a),
            other => panic!("not transcribe: {other:?}"),
        }
    }

    #[test]
    fn one_input_and_a_file_name_writes_that_file_in_its_format() {
        let run = run_of(&["transcribe", "a.mp4", "-o", "out/talk.vtt"], "").expect("valid");
        assert_eq!(run.format, Format::Vtt);
        assert!(matches!(run.output, Output::File(_, ref name) if name == "talk.vtt"));
        let err = run_of(&["transcribe", "a.mp4", "b.mp4", "-o", "out/talk.vtt"], "")
            .expect_err("two inputs, one file");
        assert!(err.to_string().contains("one file"), "{err}");
    }

    #[test]
    fn config_keys_set_the_defaults_and_flags_win() {
        let yaml = "transcribe:\n  output: subs\n  chunk: 10s\n  jobs: 3\n  format: json\n";
        let run = run_of(&["transcribe", "a.mp4", "--jobs", "2"], yaml).expect("valid");
        assert_eq!(run.settings.chunk, Duration::from_secs(10));
        assert_eq!(run.settings.jobs, 2);
        assert_eq!(run.format, Format::Json);
    }

    #[test]
    fn the_command_engine_needs_a_template_with_in_and_out() {
        let err = run_of(
            &["transcribe", "a.mp4", "-o", "d", "--engine", "command"],
            "",
        )
        .expect_err("no template");
        assert!(err.to_string().contains("--asr-cmd"), "{err}");
        let err = run_of(
            &[
                "transcribe",
                "a.mp4",
                "-o",
                "d",
                "--engine",
                "command",
                "--asr-cmd",
                "x {out}.srt",
            ],
            "",
        )
        .expect_err("no {in}");
        assert!(err.to_string().contains("{in}"), "{err}");
    }

    #[test]
    fn follow_takes_one_input_and_a_local_transcript() {
        let run = run_of(
            &["transcribe", "a.ts", "-o", "d", "--follow", "--idle", "3s"],
            "",
        )
        .expect("valid");
        assert_eq!(run.follow, Some(Duration::from_secs(3)));
        let err = run_of(&["transcribe", "a.ts", "b.ts", "-o", "d", "--follow"], "")
            .expect_err("two inputs");
        assert!(err.to_string().contains("one INPUT"), "{err}");
        let err = run_of(
            &["transcribe", "a.ts", "-o", "s3://bucket/p", "--follow"],
            "",
        )
        .expect_err("bucket");
        assert!(err.to_string().contains("local"), "{err}");
    }

    #[test]
    fn a_bad_model_dir_says_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().to_string_lossy().into_owned();
        let err = run_of(&["transcribe", "a.mp4", "-o", "d", "--model-dir", &dir], "")
            .expect_err("empty model dir");
        assert!(err.to_string().contains("acoustic model"), "{err}");
    }
}
