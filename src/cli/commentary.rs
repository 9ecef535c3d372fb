//! `vidpipe commentary`: flags, environment and the `commentary:` config
//! section merged into validated settings, then one run of the engine.
//!
//! Script problems (unknown keys, bad times, missing or undecodable audio
//! files, lines outside the video) are usage errors (exit 2) naming the
//! script's file and line; a video that cannot be commentated is a failed
//! input (exit 1); warnings (a line without a voice, a short video) go to
//! stderr and to `--progress json` as `warning` events.

use super::settings::{parse_audio_bitrate, parse_preset, Layers, SettingsError};
use super::{fail, CommentaryArgs, Outcome};
use std::time::Duration;
use vidpipe::commentary::mix::Duck;
use vidpipe::commentary::script;
use vidpipe::commentary::tts::{CommandTemplate, Espeak, SpeechBackend};
use vidpipe::commentary::writer::Wording;
use vidpipe::commentary::{self, CommentaryError, CommentarySettings, Job, LineSource};
use vidpipe::config::NumberOrText;
use vidpipe::inputs::expand;
use vidpipe::progress::Reporter;
use vidpipe::storage::{Location, S3Options};
use vidpipe::units::{parse_seconds, Bitrate};
use vidpipe::CancelFlag;

/// Everything `commentary` needs to run.
pub struct CommentaryRun {
    /// The video as given.
    pub video: String,
    /// Where the output goes (`None` only with `--events-only`).
    pub output: Option<Location>,
    /// How to reach S3.
    pub s3: S3Options,
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

fn text(v: &NumberOrText) -> String {
    v.to_string()
}

/// Validates `commentary`'s arguments against the config file.
pub fn settings(layers: &Layers, args: &CommentaryArgs) -> Result<CommentaryRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().commentary.as_ref().unwrap_or(&empty);
    let defaults = CommentarySettings::default();
    let output = layers.resolve(
        ("--output (VIDPIPE_OUTPUT)", args.output.clone()),
        ("commentary.output", cfg.output.as_ref()),
        None,
        |p| Location::parse(&p).map(Some),
        |s: &String| Location::parse(s).map(Some),
    )?;
    if output.is_none() && !args.events_only {
        return Err(SettingsError::Missing(
            "no output directory: pass -o DEST (or set VIDPIPE_OUTPUT, or commentary.output in the config file)".into(),
        ));
    }
    let interval = layers.resolve(
        ("--interval (VIDPIPE_INTERVAL)", args.interval.clone()),
        ("commentary.interval", cfg.interval.as_ref()),
        defaults.interval,
        |s| parse_interval(&s),
        |v| parse_interval(&text(v)),
    )?;
    let voice_delay = layers.resolve(
        (
            "--voice-delay (VIDPIPE_VOICE_DELAY)",
            args.voice_delay.clone(),
        ),
        ("commentary.voice-delay", cfg.voice_delay.as_ref()),
        defaults.voice_delay,
        |s| parse_delay(&s),
        |v| parse_delay(&text(v)),
    )?;
    let duck = layers.resolve(
        ("--duck (VIDPIPE_DUCK)", args.duck.clone()),
        ("commentary.duck", cfg.duck.as_ref()),
        defaults.duck,
        |s| parse_duck(&s),
        |v| parse_duck(&text(v)),
    )?;
    let tts_cmd = layers.resolve(
        ("--tts-cmd (VIDPIPE_TTS_CMD)", args.tts_cmd.clone()),
        ("commentary.tts-cmd", cfg.tts_cmd.as_ref()),
        None,
        |s| CommandTemplate::parse(&s).map(Some),
        |s: &String| CommandTemplate::parse(s).map(Some),
    )?;
    let voice = layers.resolve(
        ("--voice (VIDPIPE_VOICE)", args.voice.clone()),
        ("commentary.voice", cfg.voice.as_ref()),
        None,
        |s| Ok(Some(s)),
        |s: &String| Ok(Some(s.clone())),
    )?;
    let tts_concurrency = layers.resolve(
        (
            "--tts-concurrency (VIDPIPE_TTS_CONCURRENCY)",
            args.tts_concurrency,
        ),
        ("commentary.tts-concurrency", cfg.tts_concurrency.as_ref()),
        defaults.tts_concurrency,
        parse_concurrency,
        |n: &usize| parse_concurrency(*n),
    )?;
    let tts_timeout = layers.resolve(
        (
            "--tts-timeout (VIDPIPE_TTS_TIMEOUT)",
            args.tts_timeout.clone(),
        ),
        ("commentary.tts-timeout", cfg.tts_timeout.as_ref()),
        defaults.tts_timeout,
        |s| parse_timeout(&s),
        |v| parse_timeout(&text(v)),
    )?;
    let writer = layers.resolve(
        ("--writer (VIDPIPE_WRITER)", args.writer.clone()),
        ("commentary.writer", cfg.writer.as_ref()),
        None,
        |s| Ok(Some(s)),
        |s: &String| Ok(Some(s.clone())),
    )?;
    let per_interval = layers.resolve(
        ("--lines-per-interval", args.lines_per_interval),
        (
            "commentary.lines-per-interval",
            cfg.lines_per_interval.as_ref(),
        ),
        2,
        parse_lines_per_interval,
        |n: &usize| parse_lines_per_interval(*n),
    )?;
    let preset = layers.resolve(
        ("--preset (VIDPIPE_PRESET)", args.preset.clone()),
        ("commentary.preset", cfg.preset.as_ref()),
        defaults.preset.clone(),
        |s| parse_preset(&s),
        |s: &String| parse_preset(s),
    )?;
    let video_bitrate = layers.resolve(
        (
            "--video-bitrate (VIDPIPE_VIDEO_BITRATE)",
            args.video_bitrate.clone(),
        ),
        ("commentary.video-bitrate", cfg.video_bitrate.as_ref()),
        defaults.video_bitrate,
        |s| parse_video_bitrate(&s),
        |v| parse_video_bitrate(&text(v)),
    )?;
    let audio_bitrate = layers.resolve(
        (
            "--audio-bitrate (VIDPIPE_AUDIO_BITRATE)",
            args.audio_bitrate.clone(),
        ),
        ("commentary.audio-bitrate", cfg.audio_bitrate.as_ref()),
        defaults.audio_bitrate,
        |s| parse_audio_bitrate(&s),
        |v| parse_audio_bitrate(&text(v)),
    )?;
    let threads = layers.resolve(
        ("--threads (VIDPIPE_THREADS)", args.threads),
        ("commentary.threads", cfg.threads.as_ref()),
        defaults.threads,
        Ok,
        |n: &usize| Ok(*n),
    )?;
    let lines = match &args.script {
        Some(path) => LineSource::Script(script::load(path)?),
        None => LineSource::Auto {
            wording: writer.map_or(Wording::Templates, Wording::Command),
            per_interval,
        },
    };
    Ok(CommentaryRun {
        video: args.video.clone(),
        output,
        s3: layers.s3(),
        lines,
        events_only: args.events_only,
        tts_cmd,
        voice,
        settings: CommentarySettings {
            interval,
            voice_delay,
            duck,
            preset,
            video_bitrate,
            audio_bitrate,
            max_fps: defaults.max_fps,
            hls: args.hls,
            tts_concurrency,
            tts_timeout,
            threads,
        },
    })
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let secs = parse_seconds(s)?;
    if !(1.0..=3600.0).contains(&secs) {
        return Err(format!("interval {secs}s must be between 1 s and 1 h"));
    }
    Ok(secs)
}

fn parse_delay(s: &str) -> Result<f64, String> {
    let secs = parse_seconds(s)?;
    if secs > 60.0 {
        return Err(format!("voice delay {secs}s must be at most 60 s"));
    }
    Ok(secs)
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

fn parse_concurrency(n: usize) -> Result<usize, String> {
    if (1..=64).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} must be between 1 and 64"))
    }
}

fn parse_lines_per_interval(n: usize) -> Result<usize, String> {
    if (1..=20).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} must be between 1 and 20"))
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs = parse_seconds(s)?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("timeout {secs}s must be between 0.1 s and 1 h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_video_bitrate(s: &str) -> Result<Bitrate, String> {
    let b = Bitrate::parse(s)?;
    if !(100_000..=100_000_000).contains(&b.0) {
        return Err(format!("video bitrate {b} must be between 100k and 100M"));
    }
    Ok(b)
}

/// Runs `commentary`. `Err` is a usage error (a bad script): exit 2.
pub fn run(
    run: &CommentaryRun,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    chatty: bool,
) -> Result<Outcome, String> {
    let needs_s3 =
        matches!(run.output, Some(Location::S3 { .. })) || run.video.starts_with("s3://");
    let session = match super::s3_session(needs_s3, &run.s3, reporter) {
        Ok(session) => session,
        Err(outcome) => return Ok(outcome),
    };
    let (items, problems) = expand(std::slice::from_ref(&run.video), session.as_deref());
    if let Some(p) = problems.first() {
        fail(reporter, &p.source, &p.reason);
        return Ok(Outcome::SomeFailed);
    }
    let Some(item) = items.first() else {
        fail(reporter, &run.video, "not a video file");
        return Ok(Outcome::SomeFailed);
    };
    let (work_dir, local_output) = match &run.output {
        Some(out) => (
            vidpipe::state::StateDirs::new(super::state_root())
                .for_output(out)
                .commentary_dir(),
            match out {
                Location::Local(dir) => Some(dir.clone()),
                Location::S3 { .. } => None,
            },
        ),
        None => (std::env::temp_dir().join("vidpipe-commentary"), None),
    };
    let job = Job {
        input: item.source.clone(),
        open: item.open.clone(),
        identity: item.identity.clone(),
        work_dir,
        local_output,
    };
    if run.events_only {
        return Ok(
            match commentary::detect_all(&job, &run.settings, reporter, cancel) {
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
                    fail(reporter, &job.input, &e.to_string());
                    Outcome::SomeFailed
                }
            },
        );
    }
    let Some(dest) = run
        .output
        .as_ref()
        .and_then(|output| super::destination(output, session.as_ref()))
    else {
        fail(reporter, &run.video, "no usable output destination");
        return Ok(Outcome::SomeFailed);
    };
    let backend: Box<dyn SpeechBackend> = match &run.tts_cmd {
        Some(t) => Box::new(t.clone()),
        None => Box::new(Espeak {
            voice: run.voice.clone(),
        }),
    };
    match commentary::run(
        &job,
        &run.lines,
        &run.settings,
        backend.as_ref(),
        dest.as_ref(),
        reporter,
        cancel,
    ) {
        Ok(done) => {
            if chatty {
                eprintln!(
                    "commentary {} -> {} ({} chunks, {} built now)",
                    job.input, done.path, done.chunks, done.built
                );
            }
            Ok(Outcome::Success)
        }
        Err(CommentaryError::Script(e)) => Err(e.to_string()),
        Err(CommentaryError::Interrupted) => {
            eprintln!(
                "interrupted: finished chunks of {} are kept (state in {}); run the same command again to make the rest",
                job.input,
                job.work_dir.display()
            );
            Ok(Outcome::Interrupted)
        }
        Err(e) => {
            fail(reporter, &job.input, &e.to_string());
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
