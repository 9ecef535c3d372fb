//! `vidpipe transcode-hls`: settings, then the batch.
//!
//! Inputs run one after another (each already uses every core). A failed
//! input is reported and remembered; the batch goes on and the exit code
//! says so at the end. An interrupt stops the batch with the checkpoint of
//! the current input kept.

use super::args::{ScalingArg, SegmentFormatArg, TranscodeArgs};
use super::context::{batch_outcome, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{
    choice_name, parse_audio_bitrate, parse_choice, parse_number, parse_preset, parse_segment_ms,
    parse_threads, usage, Layers,
};
use super::Outcome;
use vidpipe::hls::ladder::Ladder;
use vidpipe::hls::scaling::Scaling;
use vidpipe::hls::{self, HlsError, Job, TranscodeSettings};
use vidpipe::inputs::{expand, InputItem, Shard};
use vidpipe::media::mux::SegmentFormat;
use vidpipe::progress::Position;
use vidpipe::storage::{Destination, Location, S3Session};

/// Everything `transcode-hls` needs to run.
#[derive(Debug, Clone)]
pub struct TranscodeRun {
    /// Input arguments as given.
    pub inputs: Vec<String>,
    /// Where the output goes.
    pub output: Location,
    /// Delete s3:// inputs after success.
    pub delete_source: bool,
    /// This machine's share of the inputs.
    pub shard: Option<Shard>,
    /// Keep the checkpoints of a bucket output here instead of beside it
    /// in the bucket.
    pub state_dir: Option<std::path::PathBuf>,
    /// Engine settings.
    pub settings: TranscodeSettings,
}

/// Where an input's checkpoint is kept: beside a local output; beside a
/// bucket output in the bucket (`None`), unless `--state-dir` keeps it on
/// this machine.
fn checkpoint_dir(run: &TranscodeRun, ctx: &Ctx, stem: &str) -> Option<std::path::PathBuf> {
    ctx.state
        .kept_here(&run.output, run.state_dir.as_deref())
        .map(|state| state.input_dir(stem))
}

/// Validated settings for `transcode-hls`.
pub fn settings(layers: &Layers, args: &TranscodeArgs) -> Result<TranscodeRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().transcode_hls.as_ref().unwrap_or(&empty);
    let s = layers.section("transcode-hls");
    let defaults = TranscodeSettings::default();
    let output = s
        .get("output", args.output.as_deref(), cfg.output.as_ref(), Location::parse)?
        .ok_or_else(|| {
            usage("no output directory: pass -o DEST (or set VIDPIPE_OUTPUT, or transcode-hls.output in the config file)")
        })?;
    let segment_format = s.or(
        "segment-format",
        args.segment_format.map(choice_name).as_deref(),
        cfg.segment_format.as_ref(),
        defaults.segment_format,
        |v| {
            parse_choice(v).map(|f| match f {
                SegmentFormatArg::Ts => SegmentFormat::Ts,
                SegmentFormatArg::Fmp4 => SegmentFormat::Fmp4,
            })
        },
    )?;
    let settings = TranscodeSettings {
        ladder: s.or(
            "ladder",
            args.ladder.as_deref(),
            cfg.ladder.as_ref(),
            defaults.ladder.clone(),
            Ladder::parse,
        )?,
        audio_bitrate: s.or(
            "audio-bitrate",
            args.audio_bitrate.as_deref(),
            cfg.audio_bitrate.as_ref(),
            defaults.audio_bitrate,
            parse_audio_bitrate,
        )?,
        segment_ms: s.or(
            "segment-duration",
            args.segment_duration.as_deref(),
            cfg.segment_duration.as_ref(),
            defaults.segment_ms,
            parse_segment_ms,
        )?,
        segment_format,
        preset: s.or(
            "preset",
            args.preset.as_deref(),
            cfg.preset.as_ref(),
            defaults.preset.clone(),
            parse_preset,
        )?,
        max_fps: s.or(
            "max-fps",
            args.max_fps.as_deref(),
            cfg.max_fps.as_ref(),
            defaults.max_fps,
            |v| parse_number(v, 1..=240),
        )?,
        scaling: s.or(
            "scaling",
            args.scaling.map(choice_name).as_deref(),
            cfg.scaling.as_ref(),
            defaults.scaling,
            |v| {
                parse_choice(v).map(|s| match s {
                    ScalingArg::Cascade => Scaling::Cascade,
                    ScalingArg::Direct => Scaling::Direct,
                })
            },
        )?,
        threads: s.or(
            "threads",
            args.threads.as_deref(),
            cfg.threads.as_ref(),
            defaults.threads,
            parse_threads,
        )?,
        audio_language: s.get(
            "audio-language",
            args.audio_language.as_deref(),
            cfg.audio_language.as_ref(),
            vidpipe::language::language_tag,
        )?,
    };
    Ok(TranscodeRun {
        inputs: args.inputs.clone(),
        output,
        state_dir: s.state_dir(args.state_dir.as_deref(), cfg.state_dir.as_ref())?,
        delete_source: s.switch(
            "delete-source",
            args.delete_source,
            cfg.delete_source.as_ref(),
        )?,
        shard: s.get(
            "shard",
            args.shard.as_deref(),
            cfg.shard.as_ref(),
            Shard::parse,
        )?,
        settings,
    })
}

/// Transcodes every input of `run`.
pub fn run(run: &TranscodeRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let needs_s3 = run.output.is_s3() || run.inputs.iter().any(|i| i.starts_with("s3://"));
    let session = ctx.s3_if(needs_s3)?;
    let (items, problems) = expand(&run.inputs, session.as_deref());
    for p in &problems {
        ctx.fail(&p.source, &p.reason);
    }
    let (items, share) = Shard::keep(run.shard, items, |item| item.name.as_str());
    if let Some(message) = share.left_empty() {
        ctx.note(&run.inputs.join(", "), message);
        return Ok(batch_outcome(problems.len()));
    }
    if items.is_empty() && problems.is_empty() {
        ctx.fail(&run.inputs.join(", "), "no video files found");
        return Ok(Outcome::SomeFailed);
    }
    let dest = ctx.destination(&run.output)?;
    let mut failed = problems.len();
    for (i, item) in items.iter().enumerate() {
        let position = Position::in_share(i, share);
        match transcode_one(
            run,
            ctx,
            (item, position),
            dest.as_ref(),
            session.as_deref(),
        ) {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(outcome) => return Ok(outcome),
        }
    }
    Ok(batch_outcome(failed))
}

/// One input: transcode, then delete an s3:// source when asked.
/// `Ok(false)` when it failed (already reported); `Err` stops the batch.
/// A pipeline calls it with an input it prepared (fetched once).
pub(super) fn transcode_one(
    run: &TranscodeRun,
    ctx: &Ctx,
    (item, position): (&InputItem, Position),
    dest: &dyn Destination,
    session: Option<&S3Session>,
) -> Result<bool, Outcome> {
    let readable = match ctx.readable(&item.open, &item.source) {
        Ok(readable) => readable,
        Err(Outcome::Interrupted) => return Err(Outcome::Interrupted),
        Err(_) => return Ok(false),
    };
    let job = Job {
        position,
        input: item.source.clone(),
        open: readable.open().to_string(),
        prefix: format!("{}/", item.stem),
        state_dir: checkpoint_dir(run, ctx, &item.stem),
        identity: item.identity.clone(),
    };
    let checkpoint = match &job.state_dir {
        Some(dir) => dir.display().to_string(),
        None => dest.describe(&format!("{}.vidpipe/", job.prefix)),
    };
    match hls::transcode(&job, dest, &run.settings, ctx.reporter(), &ctx.cancel) {
        Ok(published) => {
            ctx.say(format!("published {} -> {}", item.source, published.master));
        }
        Err(HlsError::Interrupted) => {
            eprintln!(
                "interrupted: {} is checkpointed in {}; run the same command again to resume",
                item.source, checkpoint
            );
            return Err(Outcome::Interrupted);
        }
        Err(e) => {
            ctx.fail(&item.source, &e.to_string());
            return Ok(false);
        }
    }
    let (true, Some((bucket, key)), Some(session)) = (run.delete_source, &item.object, session)
    else {
        return Ok(true);
    };
    match session.delete(bucket, key) {
        Ok(()) => {
            ctx.say(format!("deleted {}", item.source));
            Ok(true)
        }
        Err(e) => {
            ctx.fail(
                &item.source,
                &format!("published, but cannot delete the source: {e}"),
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::layers::testing::{self, error};
    use crate::cli::Command;

    fn settings_of(args: &[&str], yaml: &str) -> Result<TranscodeRun, SettingsError> {
        fn pick(command: &Command) -> Option<&TranscodeArgs> {
            match command {
                Command::TranscodeHls(args) => Some(args),
                _ => None,
            }
        }
        testing::settings_of("transcode-hls", args, yaml, pick, settings)
    }

    #[test]
    fn flags_beat_the_config_file_which_beats_defaults() {
        let yaml = "transcode-hls:\n  output: cfg-out\n  preset: fast\n  max-fps: 30\n  shard: 2/3\n  delete-source: true\n";
        let run = settings_of(&["in.mp4", "--preset", "slow"], yaml).expect("valid");
        assert_eq!(run.settings.preset, "slow");
        assert_eq!(run.settings.max_fps, 30);
        assert_eq!(run.output, Location::Local("cfg-out".into()));
        assert_eq!(run.shard, Some(Shard { index: 2, count: 3 }));
        assert!(run.delete_source);
        let run = settings_of(&["in.mp4", "-o", "out"], "").expect("valid");
        assert_eq!(run.settings.segment_ms, 6000);
        assert_eq!(run.settings.segment_format, SegmentFormat::Ts);
        assert!(!run.delete_source);
    }

    #[test]
    fn bad_values_name_their_flag_or_key() {
        let e = error(settings_of(
            &["in.mp4"],
            "transcode-hls:\n  output: o\n  max-fps: -5\n",
        ));
        assert!(
            e.contains(":3: transcode-hls.max-fps: `-5` is not a whole number"),
            "{e}"
        );
        let yaml = "transcode-hls:\n  segment-format: mkv\n";
        let e = error(settings_of(&["in.mp4", "-o", "o"], yaml));
        assert!(
            e.contains(":2: transcode-hls.segment-format: must be ts or fmp4"),
            "{e}"
        );
        // A valid flag wins over a bad config value that it replaces.
        assert!(settings_of(&["in.mp4", "-o", "o", "--segment-format", "ts"], yaml).is_ok());
        let e = error(settings_of(&["in.mp4", "-o", "o", "--shard", "4/3"], ""));
        assert!(e.starts_with("--shard (VIDPIPE_SHARD): "), "{e}");
        let e = error(settings_of(&["in.mp4", "-o", "o", "--threads", "0"], ""));
        assert!(e.starts_with("--threads (VIDPIPE_THREADS): "), "{e}");
        let e = error(settings_of(&["in.mp4"], ""));
        assert!(e.contains("no output directory"), "{e}");
        let e = error(settings_of(&["in.mp4", "-o", "ftp://x/y"], ""));
        assert!(e.contains("only local paths and s3:// URLs"), "{e}");
    }
}
