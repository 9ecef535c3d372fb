//! Running `captions`: VOD once, or live with `--follow`, and the
//! subtitle group of `--master`.

use super::settings::{CaptionsRun, MasterPath};
use super::{fail, Outcome};
use std::path::{Component, PathBuf};

use vidpipe::captions::live::{Follower, LiveSettings};
use vidpipe::captions::{self, CaptionsError, Track};
use vidpipe::progress::{Event, Reporter};
use vidpipe::storage::{Destination, Location};
use vidpipe::CancelFlag;

/// Runs `captions`; `Err` is a usage problem (exit 2).
pub fn run(
    run: &CaptionsRun,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    chatty: bool,
) -> Result<Outcome, String> {
    let master_uri = match &run.master {
        Some(master) => Some(master_uris(
            master,
            &run.output,
            run.settings.base_url.as_deref(),
        )?),
        None => None,
    };
    let needs_s3 = matches!(run.output, Location::S3 { .. })
        || matches!(
            &run.master,
            Some(MasterPath {
                dir: Location::S3 { .. },
                ..
            })
        );
    let session = match super::s3_session(needs_s3, &run.s3, reporter) {
        Ok(session) => session,
        Err(outcome) => return Ok(outcome),
    };
    let no_session = |location: &Location| {
        fail(reporter, &location.to_string(), "no S3 connection");
        Outcome::SomeFailed
    };
    let Some(dest) = super::destination(&run.output, session.as_ref()) else {
        return Ok(no_session(&run.output));
    };
    let mut settings = run.settings.clone();
    let master = match run.master.as_ref().zip(master_uri) {
        Some((m, uri)) => match super::destination(&m.dir, session.as_ref()) {
            Some(master_dest) => Some((master_dest, m.name.clone(), uri)),
            None => return Ok(no_session(&m.dir)),
        },
        None => None,
    };
    if let (Some((master_dest, name, _)), false) = (&master, run.mpegts_given) {
        settings.layout.mpegts = captions::mpegts_for_master(master_dest.as_ref(), name);
    }
    let settings = &settings;
    let attach = |tracks: &[Track]| -> bool {
        let Some((master_dest, name, uri)) = &master else {
            return true;
        };
        let entries = captions::subtitle_entries(tracks, |key| format!("{uri}{key}"));
        match captions::attach_to_master(master_dest.as_ref(), name, &entries) {
            Ok(()) => {
                if chatty {
                    eprintln!("subtitles added to {}", master_dest.describe(name));
                }
                true
            }
            Err(e) => {
                fail(reporter, &master_dest.describe(name), &e.to_string());
                false
            }
        }
    };
    match &run.live {
        None => {
            let published = captions::publish_vod(&run.tracks, dest.as_ref(), settings, reporter);
            for (track, e) in &published.failed {
                fail(reporter, &track.file(), &error_text(e));
            }
            let attached = published.tracks.is_empty() || attach(&published.tracks);
            finished(
                reporter,
                dest.as_ref(),
                &published.tracks,
                published.segments,
            );
            for track in &published.tracks {
                if chatty {
                    eprintln!(
                        "published {} ({}) -> {}, {} segments",
                        track.file(),
                        track.language,
                        dest.describe(&track.playlist_key()),
                        published.segments
                    );
                }
            }

            Ok(if published.failed.is_empty() && attached {
                Outcome::Success
            } else {
                Outcome::SomeFailed
            })
        }
        Some(options) => {
            let live = LiveSettings {
                interval: options.interval,
                window: options.window,
                finish: options.finish,
                state_path: state_path(&run.output),
            };
            let attached = attach(&run.tracks);
            let follower = Follower::new(&run.tracks, dest.as_ref(), settings, &live, reporter)
                .map_err(|e| e.to_string())?;
            match follower.run(cancel) {
                Ok(outcome) => {
                    let ended: Vec<Track> = run
                        .tracks
                        .iter()
                        .filter(|t| !outcome.failed.contains(&t.language))
                        .cloned()
                        .collect();
                    finished(reporter, dest.as_ref(), &ended, outcome.segments);
                    if chatty {
                        eprintln!(
                            "ended {} playlist(s) at {} segments after {} tick(s)",
                            ended.len(),
                            outcome.segments,
                            outcome.ticks
                        );
                    }
                    Ok(if outcome.failed.is_empty() && attached {
                        Outcome::Success
                    } else {
                        Outcome::SomeFailed
                    })
                }
                Err(CaptionsError::Interrupted) => {
                    eprintln!(
                        "stopped: progress is saved in {}; run the same command again to continue",
                        live.state_path.display()
                    );
                    Ok(Outcome::Interrupted)
                }
                Err(e) => {
                    fail(reporter, &dest.describe(""), &e.to_string());
                    Ok(Outcome::SomeFailed)
                }
            }
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

/// The live state file: see [`vidpipe::state::StateDirs`].
fn state_path(output: &Location) -> PathBuf {
    vidpipe::state::StateDirs::new(super::state_root())
        .for_output(output)
        .captions_live_file()
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
