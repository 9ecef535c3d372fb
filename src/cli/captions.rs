//! `vidpipe captions`: settings, then VOD once or live with `--follow`,
//! and the subtitle group of `--master`.

use super::context::{batch_outcome, count, Ctx};
use super::error::{CliError, SettingsError};
use super::layers::{parse_number, parse_seconds_in, parse_segment_ms, parse_url, usage, Layers};
use super::{CaptionsArgs, Outcome};
use std::path::{Component, PathBuf};
use vidpipe::captions::live::{Follower, LiveSettings};
use vidpipe::captions::segment::{Layout, DEFAULT_MPEGTS};
use vidpipe::captions::{self, CaptionSettings, CaptionsError, Track};
use vidpipe::language::{language_from_file_name, language_tag};
use vidpipe::progress::{Event, Reporter};
use vidpipe::storage::{Destination, Location, ObjectUrl};
use vidpipe::units::parse_seconds;

/// Everything `captions` needs to run.
#[derive(Debug, Clone)]
pub struct CaptionsRun {
    /// Languages, the original first.
    pub tracks: Vec<Track>,
    /// Where segments and playlists go.
    pub output: Location,
    /// The master playlist to add the subtitle group to, and what it puts
    /// before a caption playlist's key.
    pub master: Option<(MasterPath, String)>,
    /// `--mpegts-offset` was set; otherwise it follows the master's
    /// segment format.
    pub mpegts_given: bool,
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
    /// Keep the live state of a bucket output here instead of beside it.
    pub state_dir: Option<std::path::PathBuf>,
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

/// Validated settings for `captions`.
pub fn settings(layers: &Layers, args: &CaptionsArgs) -> Result<CaptionsRun, SettingsError> {
    let empty = Default::default();
    let cfg = layers.file().captions.as_ref().unwrap_or(&empty);
    let s = layers.section("captions");
    let run_only = "only a `vidpipe run` step takes this key; give the transcripts as arguments";
    s.refuse("tracks", cfg.tracks.as_ref(), run_only)?;
    s.refuse("attach", cfg.attach.as_ref(), run_only)?;
    let output = s
        .get(
            "output",
            args.output.as_deref(),
            cfg.output.as_ref(),
            Location::parse,
        )?
        .ok_or_else(|| {
            usage("no output directory: pass -o DEST (or captions.output in the config file)")
        })?;
    let segment_ms = s.or(
        "segment-duration",
        args.segment_duration.as_deref(),
        cfg.segment_duration.as_ref(),
        4000,
        parse_segment_ms,
    )?;
    let mpegts = s.get(
        "mpegts-offset",
        args.mpegts_offset.as_deref(),
        cfg.mpegts_offset.as_ref(),
        parse_mpegts,
    )?;
    let base_url = s.get(
        "base-url",
        args.base_url.as_deref(),
        cfg.base_url.as_ref(),
        parse_url,
    )?;
    let duration_ms = s.or(
        "duration",
        args.duration.as_deref(),
        cfg.duration.as_ref(),
        0,
        |d| parse_seconds(d).map(|secs| (secs * 1000.0).round() as u64),
    )?;
    let master = s.get(
        "master",
        args.master.as_deref(),
        cfg.master.as_ref(),
        parse_master,
    )?;
    let master = match master {
        Some(m) => {
            let uri = master_uris(&m, &output, base_url.as_deref()).map_err(usage)?;
            Some((m, uri))
        }
        None => None,
    };
    Ok(CaptionsRun {
        mpegts_given: mpegts.is_some(),
        tracks: parse_tracks(&args.tracks)?,
        output,
        master,
        settings: CaptionSettings {
            layout: Layout {
                segment_ms: u64::from(segment_ms),
                mpegts: mpegts.unwrap_or(DEFAULT_MPEGTS),
            },
            base_url,
            duration_ms,
        },
        live: live_options(&s, args, cfg)?,
    })
}

/// `--follow` and the options that only make sense with it.
fn live_options(
    s: &super::layers::Section<'_>,
    args: &CaptionsArgs,
    cfg: &vidpipe::config::CaptionsConfig,
) -> Result<Option<LiveOptions>, SettingsError> {
    let follow = s.switch("follow", args.follow, cfg.follow.as_ref())?;
    if !follow {
        let live_only = [
            ("--interval", args.interval.is_some()),
            ("--window", args.window.is_some()),
            ("--finish", args.finish),
            ("--state-dir", args.state_dir.is_some()),
        ];
        if let Some((flag, _)) = live_only.iter().find(|(_, given)| *given) {
            return Err(usage(format!("{flag} needs --follow")));
        }
        return Ok(None);
    }
    Ok(Some(LiveOptions {
        interval: s.or(
            "interval",
            args.interval.as_deref(),
            cfg.interval.as_ref(),
            std::time::Duration::from_secs(5),
            |v| {
                parse_seconds_in(v, "interval", 0.05..=3600.0)
                    .map(std::time::Duration::from_secs_f64)
            },
        )?,
        window: s.or(
            "window",
            args.window.as_deref(),
            cfg.window.as_ref(),
            100,
            parse_window,
        )?,
        finish: args.finish,
        state_dir: s.state_dir(args.state_dir.as_deref(), cfg.state_dir.as_ref())?,
    }))
}

/// `--master`: a local file or `s3://bucket/path/master.m3u8`.
fn parse_master(text: &str) -> Result<MasterPath, String> {
    if text.starts_with("s3://") {
        let (dir, name) = ObjectUrl::parse(text)?
            .split_name()
            .ok_or_else(|| format!("`{text}`: expected s3://bucket/path/master.m3u8"))?;
        return Ok(MasterPath { dir, name });
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

fn parse_mpegts(s: &str) -> Result<u64, String> {
    let n: u64 = parse_number(s, 0..=u64::MAX)?;
    if n < 1 << 33 {
        Ok(n)
    } else {
        Err(format!("{n} is beyond the 33-bit MPEG-TS clock"))
    }
}

fn parse_window(s: &str) -> Result<u64, String> {
    let n: u64 = parse_number(s, 0..=u64::MAX)?;
    if n >= 3 {
        Ok(n)
    } else {
        Err(format!(
            "{n}: a live playlist needs at least 3 segments (RFC 8216 6.2.2)"
        ))
    }
}

/// Runs `captions`.
pub fn run(run: &CaptionsRun, ctx: &Ctx) -> Result<Outcome, CliError> {
    let dest = ctx.destination(&run.output)?;
    let master = match &run.master {
        Some((m, uri)) => Some(Master {
            dest: ctx.destination(&m.dir)?,
            name: m.name.clone(),
            uri: uri.clone(),
        }),
        None => None,
    };
    let mut settings = run.settings.clone();
    if let (Some(master), false) = (&master, run.mpegts_given) {
        settings.layout.mpegts = captions::mpegts_for_master(master.dest.as_ref(), &master.name);
    }
    match &run.live {
        None => Ok(publish_vod(
            run,
            ctx,
            dest.as_ref(),
            &settings,
            master.as_ref(),
        )),
        Some(options) => follow(run, ctx, dest.as_ref(), &settings, master.as_ref(), options),
    }
}

/// The master playlist to attach the subtitle group to.
struct Master {
    dest: Box<dyn Destination>,
    name: String,
    uri: String,
}

impl Master {
    /// Adds `tracks` to the master; `false` (reported) when that failed.
    fn attach(&self, ctx: &Ctx, tracks: &[Track]) -> bool {
        let entries = captions::subtitle_entries(tracks, |key| format!("{}{key}", self.uri));
        let master = self.dest.describe(&self.name);
        match captions::attach_to_master(self.dest.as_ref(), &self.name, &entries) {
            Ok(true) => {
                ctx.say(format!("subtitles added to {master}"));
                true
            }
            Ok(false) => {
                ctx.say(format!("{master} already lists these subtitles"));
                true
            }
            Err(e) => {
                ctx.fail(&master, &error_text(&e));
                false
            }
        }
    }
}

fn publish_vod(
    run: &CaptionsRun,
    ctx: &Ctx,
    dest: &dyn Destination,
    settings: &CaptionSettings,
    master: Option<&Master>,
) -> Outcome {
    let published = captions::publish_vod(&run.tracks, dest, settings, ctx.reporter());
    for (track, e) in &published.failed {
        ctx.fail(&track.file(), &error_text(e));
    }
    let attached = match master {
        Some(m) if !published.tracks.is_empty() => m.attach(ctx, &published.tracks),
        _ => true,
    };
    finished(ctx.reporter(), dest, &published.tracks, published.segments);
    for track in &published.tracks {
        ctx.say(format!(
            "published {} ({}) -> {}, {}",
            track.file(),
            track.language,
            dest.describe(&track.playlist_key()),
            count(published.segments, "segment")
        ));
    }
    batch_outcome(published.failed.len() + usize::from(!attached))
}

fn follow(
    run: &CaptionsRun,
    ctx: &Ctx,
    dest: &dyn Destination,
    settings: &CaptionSettings,
    master: Option<&Master>,
    options: &LiveOptions,
) -> Result<Outcome, CliError> {
    let live = LiveSettings {
        interval: options.interval,
        window: options.window,
        finish: options.finish,
        // Beside a local output; beside a bucket output in the bucket,
        // unless --state-dir keeps it on this machine.
        state_path: ctx
            .state
            .kept_here(&run.output, options.state_dir.as_deref())
            .map(|state| state.captions_live_file()),
    };
    let saved_in = vidpipe::captions::live::state_place(dest, &live).describe();
    let attached = master.is_none_or(|m| m.attach(ctx, &run.tracks));
    let follower = Follower::new(&run.tracks, dest, settings, &live, ctx.reporter())
        .map_err(|e| CliError::runtime(dest.describe(""), e))?;
    match follower.run(&ctx.cancel) {
        Ok(outcome) => {
            let ended: Vec<Track> = run
                .tracks
                .iter()
                .filter(|t| !outcome.failed.contains(&t.language))
                .cloned()
                .collect();
            finished(ctx.reporter(), dest, &ended, outcome.segments);
            ctx.say(format!(
                "ended {} at {} after {}",
                count(ended.len() as u64, "playlist"),
                count(outcome.segments, "segment"),
                count(outcome.ticks, "tick")
            ));
            Ok(batch_outcome(outcome.failed.len() + usize::from(!attached)))
        }
        Err(CaptionsError::Interrupted) => {
            eprintln!(
                "stopped: progress is saved in {saved_in}; run the same command again to continue",
            );
            Ok(Outcome::Interrupted)
        }
        Err(e) => {
            ctx.fail(&dest.describe(""), &e.to_string());
            Ok(Outcome::SomeFailed)
        }
    }
}

fn error_text(e: &CaptionsError) -> String {
    match e {
        // The file already leads the line `fail` prints.
        CaptionsError::Transcript { problem, .. } => {
            format!("line {}: {}", problem.line, problem.message)
        }
        CaptionsError::Read { source, .. } => source.to_string(),
        CaptionsError::Master { reason, .. } => reason.clone(),
        e => e.to_string(),
    }
}

fn finished(reporter: &dyn Reporter, dest: &dyn Destination, tracks: &[Track], segments: u64) {
    reporter.report(Event::CaptionsDone {
        output: dest.describe(""),
        languages: tracks.iter().map(|t| t.language.clone()).collect(),
        segments,
    });
}

/// What the master playlist puts before a caption playlist's key: the
/// `--base-url`, else the relative path from the master's directory to the
/// output.
fn master_uris(
    master: &MasterPath,
    output: &Location,
    base_url: Option<&str>,
) -> Result<String, String> {
    if let Some(base) = base_url {
        return Ok(format!("{}/", base.trim_end_matches('/')));
    }
    let (from_root, from) = anchor(&master.dir)?;
    let (to_root, to) = anchor(output)?;
    if from_root != to_root {
        return Err(format!(
            "--master is in {} but the captions go to {}: give --base-url so the master can point at them",
            master.dir,
            output
        ));
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut prefix = "../".repeat(from.len() - common);
    for part in &to[common..] {
        prefix.push_str(part);
        prefix.push('/');
    }
    Ok(prefix)
}

/// A directory as a root (`""` for this machine, `s3://bucket`) and its
/// path components, `.` and `..` resolved.
fn anchor(location: &Location) -> Result<(String, Vec<String>), String> {
    match location {
        Location::Local(dir) => {
            let absolute =
                std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut parts: Vec<String> = Vec::new();
            for component in absolute.components() {
                match component {
                    Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                    Component::ParentDir => {
                        parts.pop();
                    }
                    _ => {}
                }
            }
            Ok((String::new(), parts))
        }
        Location::S3 { bucket, prefix } => Ok((
            format!("s3://{bucket}"),
            prefix
                .split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(master: &str, output: &str) -> Result<String, String> {
        let master = MasterPath {
            dir: Location::parse(master).expect("master"),
            name: "master.m3u8".into(),
        };
        master_uris(&master, &Location::parse(output).expect("output"), None)
            .map(|prefix| format!("{prefix}captions.m3u8"))
    }

    #[test]
    fn master_points_at_the_captions_relatively() {
        assert_eq!(
            uri("/srv/hls/talk", "/srv/hls/talk").as_deref(),
            Ok("captions.m3u8")
        );
        assert_eq!(
            uri("/srv/hls/talk", "/srv/hls/talk/subs").as_deref(),
            Ok("subs/captions.m3u8")
        );
        assert_eq!(
            uri("/srv/hls/talk", "/srv/captions/talk/").as_deref(),
            Ok("../../captions/talk/captions.m3u8")
        );
        assert_eq!(
            uri("/srv/hls/./talk/x/..", "/srv/hls/talk/subs").as_deref(),
            Ok("subs/captions.m3u8")
        );
        assert_eq!(
            uri("s3://media/vod/talk", "s3://media/vod/talk/subs").as_deref(),
            Ok("subs/captions.m3u8")
        );
        assert!(uri("s3://media/vod/talk", "/srv/subs")
            .expect_err("should fail")
            .contains("--base-url"));
        assert!(uri("s3://media/a", "s3://other/a").is_err());
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::cli::layers::testing::{self, error};
    use crate::cli::Command;

    fn settings_of(args: &[&str], yaml: &str) -> Result<CaptionsRun, SettingsError> {
        fn pick(command: &Command) -> Option<&CaptionsArgs> {
            match command {
                Command::Captions(args) => Some(args),
                _ => None,
            }
        }
        testing::settings_of("captions", args, yaml, pick, settings)
    }

    #[test]
    fn the_section_sets_every_option() {
        let yaml = "captions:\n  output: subs\n  segment-duration: 6\n  duration: 1h2m\n  follow: true\n  interval: 2s\n  window: 5\n  base-url: https://cdn.example/t/\n";
        let run = settings_of(&["en=a.srt"], yaml).expect("valid");
        assert_eq!(run.output, Location::Local("subs".into()));
        assert_eq!(run.settings.layout.segment_ms, 6000);
        assert_eq!(run.settings.duration_ms, 3_720_000);
        let live = run.live.expect("live");
        assert_eq!(live.interval, std::time::Duration::from_secs(2));
        assert_eq!(live.window, 5);
        let run = settings_of(
            &["en=a.srt", "-o", "x", "--window", "7"],
            "captions:\n  follow: true\n",
        )
        .expect("valid");
        assert_eq!(run.live.expect("live").window, 7);
        let run = settings_of(&["a.srt", "-o", "x"], "").expect("vod");
        assert!(run.live.is_none());
        assert_eq!(run.settings.layout.segment_ms, 4000);
    }

    #[test]
    fn bad_values_and_combinations_are_usage_errors() {
        let e = error(settings_of(&["a.srt", "-o", "x", "--window", "3"], ""));
        assert_eq!(e, "--window needs --follow");
        let e = error(settings_of(
            &["a.srt", "-o", "x"],
            "captions:\n  follow: true\n  window: 2\n",
        ));
        assert!(
            e.contains(":3: captions.window: 2: a live playlist needs at least 3 segments"),
            "{e}"
        );
        let e = error(settings_of(
            &["a.srt", "-o", "x", "--mpegts-offset", "9999999999"],
            "",
        ));
        assert!(
            e.starts_with("--mpegts-offset (VIDPIPE_CAPTIONS_MPEGTS): "),
            "{e}"
        );
        let e = error(settings_of(
            &[
                "a.srt",
                "-o",
                "/srv/subs",
                "--master",
                "s3://media/t/master.m3u8",
            ],
            "",
        ));
        assert!(e.contains("--base-url"), "{e}");
        let e = error(settings_of(
            &["a.srt", "-o", "x", "--master", "s3://media/"],
            "",
        ));
        assert!(e.contains("expected s3://bucket/path/master.m3u8"), "{e}");
    }
}
