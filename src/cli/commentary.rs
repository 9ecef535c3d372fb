//! `vidpipe commentary`: flags, environment and the `commentary:` config
//! section merged into validated settings, then one run of the engine.
//!
//! Script problems (unknown keys, bad times, missing or undecodable audio
//! files, lines outside the video) are usage errors (exit 2) naming the
//! script's file and line; a video that cannot be commentated is a failed
//! input (exit 1); warnings (a line without a voice, a short video) go to
//! stderr and to `--progress json` as `warning` events.

use super::context::{count, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{
    parse_audio_bitrate, parse_number, parse_preset, parse_seconds_in, parse_threads, usage,
    Layers, Section,
};
use super::{CommentaryArgs, Outcome};
use std::time::Duration;
use vidpipe::commentary::mix::Duck;
use vidpipe::commentary::script;
use vidpipe::commentary::tts::{CommandTemplate, Espeak, SpeechBackend};
use vidpipe::commentary::writer::Wording;
use vidpipe::commentary::{self, CommentaryError, CommentarySettings, Job, LineSource};
use vidpipe::config::CommentaryConfig;
use vidpipe::inputs::{expand, InputItem};
use vidpipe::progress::Position;
use vidpipe::storage::Location;
use vidpipe::units::Bitrate;

/// Everything `commentary` needs to run.
pub struct CommentaryRun {
    /// The video as given.
    pub video: String,
    /// Where the output goes (`None` only with `--events-only`).
    pub output: Option<Location>,
    /// `--state-dir`: keep a bucket output's state on this machine.
    pub state_dir: Option<std::path::PathBuf>,
    /// Script lines, or `--auto`.
    pub lines: LineSource,
    /// Print the detected events and stop.
    pub events_only: bool,
    /// The TTS command template, or `None` for espeak-ng.
    pub tts_cmd: Option<CommandTemplate>,
    /// espeak-ng voice.
    pub voice: Option<String>,
    /// Engine settings.
    pub settings: CommentarySettings,
}

/// Validates `commentary`'s arguments against the config file.
pub fn settings(layers: &Layers, args: &CommentaryArgs) -> Result<CommentaryRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().commentary.as_ref().unwrap_or(&empty);
    let s = layers.section("commentary");
    let text = |v: &str| Ok::<_, String>(v.to_string());
    let output = s.get(
        "output",
        args.output.as_deref(),
        cfg.output.as_ref(),
        Location::parse,
    )?;
    if output.is_none() && !args.events_only {
        return Err(usage(
            "no output directory: pass -o DEST (or set VIDPIPE_OUTPUT, or commentary.output in the config file)",
        ));
    }
    let lines = line_source(&s, args, cfg)?;
    let tts_cmd = s.get(
        "tts-cmd",
        args.tts_cmd.as_deref(),
        cfg.tts_cmd.as_ref(),
        CommandTemplate::parse,
    )?;
    Ok(CommentaryRun {
        video: args.video.clone(),
        output,
        state_dir: s.state_dir(args.state_dir.as_deref(), cfg.state_dir.as_ref())?,
        lines,
        events_only: args.events_only,
        voice: s.get("voice", args.voice.as_deref(), cfg.voice.as_ref(), |v| {
            // Only espeak-ng (no TTS command) has voices to check.
            if tts_cmd.is_none() {
                Espeak::check_voice(v)?;
            }
            text(v)
        })?,
        tts_cmd,
        settings: engine_settings(&s, args, cfg)?,
    })
}

/// What to speak: `--script` lines, or lines made with `--auto` (whose
/// options make no sense with a script).
fn line_source(
    s: &Section<'_>,
    args: &CommentaryArgs,
    cfg: &CommentaryConfig,
) -> Result<LineSource, SettingsError> {
    let text = |v: &str| Ok::<_, String>(v.to_string());
    let script = s.get("script", args.script.as_deref(), cfg.script.as_ref(), text)?;
    let auto = s.switch("auto", args.auto, cfg.auto.as_ref())?;
    let writer = s.get("writer", args.writer.as_deref(), cfg.writer.as_ref(), text)?;
    let per_interval = s.or(
        "lines-per-interval",
        args.lines_per_interval.as_deref(),
        cfg.lines_per_interval.as_ref(),
        2,
        |v| parse_number(v, 1..=20),
    )?;
    Ok(match (script, auto) {
        (Some(_), true) => return Err(usage("give either --script or --auto, not both")),
        (None, false) => {
            return Err(usage(
                "say what to speak: --script FILE.yaml (lines with times), or --auto (lines made from the video's events)",
            ))
        }
        (Some(path), false) => {
            let auto_only = [
                ("--writer", writer.is_some()),
                ("--events-only", args.events_only),
                ("--lines-per-interval", args.lines_per_interval.is_some()),
            ];
            if let Some((flag, _)) = auto_only.iter().find(|(_, given)| *given) {
                return Err(usage(format!("{flag} goes with --auto, not --script")));
            }
            LineSource::Script(script::load(std::path::Path::new(&path))?)
        }
        (None, true) => LineSource::Auto {
            wording: writer.map_or(Wording::Templates, Wording::Command),
            per_interval,
        },
    })
}

/// The engine's settings: chunks, voice placement, mix, encoding, TTS.
fn engine_settings(
    s: &Section<'_>,
    args: &CommentaryArgs,
    cfg: &CommentaryConfig,
) -> Result<CommentarySettings, SettingsError> {
    let defaults = CommentarySettings::default();
    Ok(CommentarySettings {
        interval: s.or(
            "interval",
            args.interval.as_deref(),
            cfg.interval.as_ref(),
            defaults.interval,
            |v| parse_seconds_in(v, "interval", 1.0..=3600.0),
        )?,
        voice_delay: s.or(
            "voice-delay",
            args.voice_delay.as_deref(),
            cfg.voice_delay.as_ref(),
            defaults.voice_delay,
            |v| parse_seconds_in(v, "voice delay", 0.0..=60.0),
        )?,
        duck: s.or(
            "duck",
            args.duck.as_deref(),
            cfg.duck.as_ref(),
            defaults.duck,
            parse_duck,
        )?,
        preset: s.or(
            "preset",
            args.preset.as_deref(),
            cfg.preset.as_ref(),
            defaults.preset.clone(),
            parse_preset,
        )?,
        video_bitrate: s.or(
            "video-bitrate",
            args.video_bitrate.as_deref(),
            cfg.video_bitrate.as_ref(),
            defaults.video_bitrate,
            parse_video_bitrate,
        )?,
        audio_bitrate: s.or(
            "audio-bitrate",
            args.audio_bitrate.as_deref(),
            cfg.audio_bitrate.as_ref(),
            defaults.audio_bitrate,
            parse_audio_bitrate,
        )?,
        max_fps: defaults.max_fps,
        hls: s.switch("hls", args.hls, cfg.hls.as_ref())?,
        tts_concurrency: s.or(
            "tts-concurrency",
            args.tts_concurrency.as_deref(),
            cfg.tts_concurrency.as_ref(),
            defaults.tts_concurrency,
            |v| parse_number(v, 1..=64),
        )?,
        tts_timeout: s.or(
            "tts-timeout",
            args.tts_timeout.as_deref(),
            cfg.tts_timeout.as_ref(),
            defaults.tts_timeout,
            |v| parse_seconds_in(v, "timeout", 0.1..=3600.0).map(Duration::from_secs_f64),
        )?,
        threads: s.or(
            "threads",
            args.threads.as_deref(),
            cfg.threads.as_ref(),
            defaults.threads,
            parse_threads,
        )?,
    })
}

fn parse_duck(s: &str) -> Result<Duck, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(Duck::Auto);
    }
    let gain: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` must be a gain from 0 to 1 (e.g. 0.2) or `auto`"))?;
    let gain = if s.trim().ends_with('%') {
        gain / 100.0
    } else {
        gain
    };
    if !(0.0..=1.0).contains(&gain) {
        return Err(format!(
            "`{s}` must be a gain from 0 to 1 (e.g. 0.2) or `auto`"
        ));
    }
    Ok(Duck::Fixed(gain))
}

fn parse_video_bitrate(s: &str) -> Result<Bitrate, String> {
    let b = Bitrate::parse(s)?;
    if !(100_000..=100_000_000).contains(&b.0) {
        return Err(format!("video bitrate {b} must be between 100k and 100M"));
    }
    Ok(b)
}

/// Runs `commentary`.
pub fn run(run: &CommentaryRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let needs_s3 =
        run.output.as_ref().is_some_and(Location::is_s3) || run.video.starts_with("s3://");
    let session = ctx.s3_if(needs_s3)?;
    let (items, problems) = expand(std::slice::from_ref(&run.video), session.as_deref());
    if let Some(p) = problems.first() {
        ctx.fail(&p.source, &p.reason);
        return Ok(Outcome::SomeFailed);
    }
    let Some(item) = items.first() else {
        ctx.fail(&run.video, "not a video file");
        return Ok(Outcome::SomeFailed);
    };
    commentate_item(run, ctx, item)
}

/// Commentates one prepared input (a pipeline hands its own, fetched once).
pub(super) fn commentate_item(
    run: &CommentaryRun,
    ctx: &Ctx,
    item: &InputItem,
) -> Result<Outcome, CliError> {
    let readable = match ctx.readable(&item.open, &item.source) {
        Ok(readable) => readable,
        Err(outcome) => return Ok(outcome),
    };
    let kept_here = run
        .output
        .as_ref()
        .and_then(|out| ctx.state.kept_here(out, run.state_dir.as_deref()));
    let job = Job {
        position: Position::ONLY,
        input: item.source.clone(),
        open: readable.open().to_string(),
        identity: item.identity.clone(),
        work_dir: match (&run.output, &kept_here) {
            (_, Some(state)) => state.commentary_dir(),
            (Some(out), None) => ctx.state.for_output(out).commentary_dir(),
            (None, None) => std::env::temp_dir().join("vidpipe-commentary"),
        },
        state_in_output: run.output.is_some() && kept_here.is_none(),
        local_output: match &run.output {
            Some(Location::Local(dir)) => Some(dir.clone()),
            _ => None,
        },
    };
    match &run.output {
        Some(output) if !run.events_only => commentate(run, ctx, &job, output),
        _ => Ok(print_events(run, ctx, &job)),
    }
}

/// `--events-only`: the detected events as JSON on stdout.
fn print_events(run: &CommentaryRun, ctx: &Ctx, job: &Job) -> Outcome {
    match commentary::detect_all(job, &run.settings, ctx.reporter(), &ctx.cancel) {
        Ok(events) => {
            let json = serde_json::json!({ "input": job.input, "events": events });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
            Outcome::Success
        }
        Err(CommentaryError::Interrupted) => Outcome::Interrupted,
        Err(e) => {
            ctx.fail(&job.input, &e.to_string());
            Outcome::SomeFailed
        }
    }
}

fn commentate(
    run: &CommentaryRun,
    ctx: &Ctx,
    job: &Job,
    output: &Location,
) -> Result<Outcome, CliError> {
    let dest = ctx.destination(output)?;
    let backend: Box<dyn SpeechBackend> = match &run.tts_cmd {
        Some(t) => Box::new(t.clone()),
        None => Box::new(Espeak {
            voice: run.voice.clone(),
        }),
    };
    let done = commentary::run(
        job,
        &run.lines,
        &run.settings,
        backend.as_ref(),
        dest.as_ref(),
        ctx.reporter(),
        &ctx.cancel,
    );
    match done {
        Ok(done) => {
            ctx.say(format!(
                "commentary {} -> {} ({}, {} built now)",
                job.input,
                done.path,
                count(done.chunks, "chunk"),
                done.built
            ));
            Ok(Outcome::Success)
        }
        Err(CommentaryError::Script(e)) => Err(SettingsError::Script(e).into()),
        Err(CommentaryError::Interrupted) => {
            eprintln!(
                "interrupted: finished chunks of {} are kept (state in {}); run the same command again to make the rest",
                job.input,
                commentary::state_location(job, dest.as_ref())
            );
            Ok(Outcome::Interrupted)
        }
        Err(e) => {
            ctx.fail(&job.input, &e.to_string());
            Ok(Outcome::SomeFailed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duck_values() {
        assert_eq!(parse_duck("0.2"), Ok(Duck::Fixed(0.2)));
        assert_eq!(parse_duck("20%"), Ok(Duck::Fixed(0.2)));
        assert_eq!(parse_duck("AUTO"), Ok(Duck::Auto));
        assert!(parse_duck("1.5").is_err());
        assert!(parse_duck("loud").is_err());
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::cli::layers::testing::{self, error};
    use crate::cli::Command;

    fn settings_of(args: &[&str], yaml: &str) -> Result<CommentaryRun, SettingsError> {
        fn pick(command: &Command) -> Option<&CommentaryArgs> {
            match command {
                Command::Commentary(args) => Some(args),
                _ => None,
            }
        }
        testing::settings_of("commentary", args, yaml, pick, settings)
    }

    #[test]
    fn the_section_sets_every_option() {
        let yaml = "commentary:\n  output: out\n  auto: true\n  hls: true\n  interval: 10s\n  tts-concurrency: 2\n  writer: ./write.sh\n";
        let run = settings_of(&["v.mp4"], yaml).expect("valid");
        assert!(run.settings.hls);
        assert_eq!(run.settings.interval, 10.0);
        assert_eq!(run.settings.tts_concurrency, 2);
        assert!(matches!(
            run.lines,
            LineSource::Auto { wording: Wording::Command(ref c), per_interval: 2 } if c == "./write.sh"
        ));
        let run = settings_of(&["v.mp4", "--interval", "5"], yaml).expect("valid");
        assert_eq!(run.settings.interval, 5.0);
    }

    #[test]
    fn what_to_speak_must_be_said_once() {
        let e = error(settings_of(&["v.mp4", "-o", "o"], ""));
        assert!(
            e.contains("--script FILE.yaml") && e.contains("--auto"),
            "{e}"
        );
        let e = error(settings_of(
            &["v.mp4", "-o", "o", "--auto", "--script", "s.yaml"],
            "",
        ));
        assert!(e.contains("not both"), "{e}");
        let e = error(settings_of(
            &["v.mp4", "-o", "o", "--script", "s.yaml", "--writer", "w"],
            "",
        ));
        assert!(e.contains("--writer goes with --auto"), "{e}");
        let e = error(settings_of(
            &["v.mp4", "-o", "o", "--auto", "--tts-concurrency", "0"],
            "",
        ));
        assert!(
            e.starts_with("--tts-concurrency (VIDPIPE_TTS_CONCURRENCY): "),
            "{e}"
        );
        let e = error(settings_of(
            &["v.mp4", "-o", "o"],
            "commentary:\n  auto: maybe\n",
        ));
        assert!(
            e.contains(":2: commentary.auto: `maybe` must be true or false"),
            "{e}"
        );
    }
}
