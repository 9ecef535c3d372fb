//! `transcode-hls`: one input in, an adaptive-bitrate HLS package out.
//!
//! Data flow for one input: probe → thumbnail → ladder plan → one demux and
//! one video decode on this thread → shared frames passed over bounded
//! channels along a pipeline of rendition workers, one per rendition (a
//! rayon pool sized to them; on one core all renditions run on this
//! thread, [`scaling`]) → each worker scales (cascading where that keeps
//! the quality), encodes and cuts segments on the shared
//! [`clock::SegmentClock`] → media playlists as each rendition completes →
//! the master playlist last, only when all are complete. A
//! [`checkpoint`] after every segment makes a re-run resume.
//!
//! [`transcode`] runs those steps in order: probe and plan, open the
//! checkpoint (resume or start over), encode what is missing (`encode`),
//! publish the master playlist.

pub mod checkpoint;
pub mod clock;
mod encode;
mod fanout;
pub mod ladder;
pub mod playlist;
pub mod scaling;
mod worker;

use crate::cpu;
use crate::fingerprint::fingerprint;
use crate::media::mux::SegmentFormat;
use crate::media::probe::{describe, require_video, AudioInfo, MediaInfo, VideoInfo};
use crate::media::video::{encoder_threads, output_frame_rate};
use crate::media::{self, ff, MediaError};
use crate::progress::{Event, Reporter};
use crate::storage::Destination;
use crate::units::Bitrate;
use crate::CancelFlag;
use checkpoint::{Checkpoint, CheckpointFile, Place};
use clock::SegmentClock;
use encode::EncodePlan;
use ladder::{Ladder, Rendition};
use playlist::{master_playlist, AudioGroup, Bandwidth, Variant};
use scaling::Scaling;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use worker::AUDIO_RENDITION;

/// Validated settings of `transcode-hls`.
#[derive(Debug, Clone, Serialize)]
pub struct TranscodeSettings {
    /// Rungs and their bitrates.
    pub ladder: Ladder,
    /// AAC bitrate of the audio rendition.
    pub audio_bitrate: Bitrate,
    /// Target segment duration in milliseconds.
    pub segment_ms: u32,
    /// Segment container.
    pub segment_format: SegmentFormat,
    /// x264 preset.
    pub preset: String,
    /// Highest output frame rate; faster sources are converted down.
    pub max_fps: u32,
    /// Whether renditions are scaled from the next larger one or all from
    /// the source.
    pub scaling: Scaling,
    /// CPU threads to use in total (0: all cores). Not part of the output's
    /// identity, so changing it does not invalidate a checkpoint.
    #[serde(skip)]
    pub threads: usize,
    /// BCP-47 language of the audio rendition, instead of the source's
    /// tag. It only changes the master playlist, which every run rewrites,
    /// so it is not part of the output's identity either.
    #[serde(skip)]
    pub audio_language: Option<String>,
}

impl Default for TranscodeSettings {
    fn default() -> Self {
        TranscodeSettings {
            ladder: Ladder::default(),
            audio_bitrate: Bitrate(128_000),
            segment_ms: 6000,
            segment_format: SegmentFormat::Ts,
            preset: "veryfast".into(),
            max_fps: 60,
            scaling: Scaling::Cascade,
            threads: 0,
            audio_language: None,
        }
    }
}

/// x264 presets, fastest first.
pub const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Why an input could not be published.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    /// The input itself is unusable.
    #[error("{0}")]
    Input(String),
    /// libav failed while encoding.
    #[error("{0}")]
    Media(String, #[source] MediaError),
    /// A rendition worker stopped before its rendition was complete.
    #[error("rendition {rendition}: {reason}")]
    Worker {
        /// The rendition (`720p`, `audio`).
        rendition: String,
        /// What happened.
        reason: String,
    },
    /// The run could not set itself up or lost track of its own parts
    /// (threads, memory, an invariant); nothing the input can fix.
    #[error("{0}")]
    Internal(String),
    /// Storing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The master playlist of an earlier run with other settings could not
    /// be removed; nothing was encoded, so it still matches the output
    /// beside it.
    #[error(
        "cannot remove {path}, the master playlist of an earlier run with other settings: {source}"
    )]
    StaleMaster {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or saving the checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] crate::state::StateError),
    /// The user interrupted the run; the checkpoint is kept.
    #[error("interrupted")]
    Interrupted,
}

/// libav failures while decoding the input (the messages say what was
/// being done: "decoding video", "encoding AAC", ...).
impl From<MediaError> for HlsError {
    fn from(e: MediaError) -> Self {
        HlsError::Input(e.to_string())
    }
}

/// One input of a batch and where its output goes.
#[derive(Debug, Clone)]
pub struct Job {
    /// The input as shown to the user (path, URL, s3:// URL).
    pub input: String,
    /// What libav opens (differs from `input` for presigned s3:// inputs).
    pub open: String,
    /// Output key prefix (`<stem>/`) under the destination.
    pub prefix: String,
    /// The input's state directory for the checkpoint
    /// ([`crate::state::OutputState::input_dir`]), or `None` to keep it
    /// beside the output in the destination (`<stem>/.vidpipe/`), where any
    /// machine finds it.
    pub state_dir: Option<PathBuf>,
    /// Identity of the input for the checkpoint (size, mtime...).
    pub identity: String,
    /// Where the input stands in its batch.
    pub position: crate::progress::Position,
}

/// What a finished input produced.
#[derive(Debug, Clone)]
pub struct Published {
    /// Location of the master playlist.
    pub master: String,
    /// Renditions encoded by this run (others were resumed complete).
    pub encoded: Vec<String>,
}

/// Threads for each rendition's x264 encoder: a share of the cores
/// proportional to its pixel count, so the large renditions do not become
/// the bottleneck while the small ones idle.
pub fn rendition_threads(renditions: &[Rendition], cores: usize) -> Vec<usize> {
    work_weights(renditions)
        .iter()
        .map(|w| encoder_threads(cores as f64 * w))
        .collect()
}

fn work_weights(renditions: &[Rendition]) -> Vec<f64> {
    let pixels: Vec<f64> = renditions
        .iter()
        .map(|r| f64::from(r.width) * f64::from(r.height))
        .collect();
    let total: f64 = pixels.iter().sum::<f64>().max(1.0);
    pixels.iter().map(|p| p / total).collect()
}

/// Transcodes one input into `dest` under `job.prefix`.
pub fn transcode(
    job: &Job,
    dest: &dyn Destination,
    settings: &TranscodeSettings,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
) -> Result<Published, HlsError> {
    let run = Run {
        job,
        dest,
        settings,
        reporter,
        cancel,
    };
    let started = cpu::process_cpu();
    let mut probed = run.probe()?;
    let (checkpoint, resuming) = run.open_checkpoint(&probed)?;
    let thumbnail_frame = run.thumbnail_frame(&probed, resuming);
    let pending = run.pending(&probed, &checkpoint);
    let mut spent = BTreeMap::new();
    if !pending.names.is_empty() || thumbnail_frame.is_some() {
        let plan = run.encode_plan(&probed, &pending, thumbnail_frame);
        let ledger = cpu::Ledger::default();
        encode::encode(
            &run,
            &mut probed.input,
            &probed.info,
            &checkpoint,
            plan,
            &ledger,
        )?;
        spent = ledger.report(cpu::process_cpu().saturating_sub(started));
        tracing::info!("{}: CPU seconds: {}", job.input, cpu::summary(&spent));
    }
    let master = run.publish(&probed, &checkpoint, spent)?;
    Ok(Published {
        master,
        encoded: pending.names,
    })
}

/// Everything one input's transcode shares between its steps.
struct Run<'a> {
    job: &'a Job,
    dest: &'a dyn Destination,
    settings: &'a TranscodeSettings,
    reporter: &'a dyn Reporter,
    cancel: &'a CancelFlag,
}

/// What probing the input and planning its ladder found.
struct Probed {
    /// The opened input, demuxed again by the encode.
    input: ff::format::context::Input,
    info: MediaInfo,
    video: VideoInfo,
    audio: Option<AudioInfo>,
    fps: ff::Rational,
    clock: SegmentClock,
    renditions: Vec<Rendition>,
    /// Every rendition's name, the audio rendition last.
    names: Vec<String>,
}

/// The renditions this run still has to encode.
struct Pending {
    /// Their names, in ladder order.
    names: Vec<String>,
    /// The segment the least advanced of them resumes at.
    first_segment: u32,
}

impl<'a> Run<'a> {
    /// Opens and describes the input, plans the ladder, and announces both.
    fn probe(&self) -> Result<Probed, HlsError> {
        let input =
            media::open_input(&self.job.open).map_err(|e| HlsError::Input(e.to_string()))?;
        let info = describe(&self.job.input, &input);
        let video = require_video(&info)
            .map_err(|e| HlsError::Input(e.to_string()))?
            .clone();
        let audio = info.audio.first().cloned();
        let fps = output_frame_rate(video.fps_fraction, self.settings.max_fps);
        let clock = SegmentClock::new(
            fps.numerator() as u32,
            fps.denominator() as u32,
            self.settings.segment_ms,
        );
        self.reporter.report(Event::Probe {
            input: self.job.input.clone(),
            index: self.job.position.index,
            total: self.job.position.total,
            share: self.job.position.share,
            width: video.display_width,
            height: video.display_height,
            duration: info.duration,
            fps: clock.fps(),
            audio: audio.is_some(),
        });
        let renditions = self
            .settings
            .ladder
            .plan(video.display_width, video.display_height);
        let (names, weights) = progress_weights(&renditions, audio.is_some());
        tracing::debug!(
            "{}: {}x{} displayed, {:.3} fps, ladder {}",
            self.job.input,
            video.display_width,
            video.display_height,
            clock.fps(),
            renditions
                .iter()
                .map(|r| format!("{} {}x{} {}", r.name, r.width, r.height, r.bitrate))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.reporter.report(Event::Ladder {
            input: self.job.input.clone(),
            renditions: names.clone(),
            weights,
        });
        Ok(Probed {
            input,
            info,
            video,
            audio,
            fps,
            clock,
            renditions,
            names,
        })
    }

    /// Resumes the checkpoint of an earlier run with the same input and
    /// settings, or clears that run's output and starts a fresh one.
    /// Returns the checkpoint and whether it is resumed.
    fn open_checkpoint(&self, probed: &Probed) -> Result<(CheckpointFile<'a>, bool), HlsError> {
        let job = self.job;
        let fresh = Checkpoint::new(
            job.identity.clone(),
            fingerprint(&(self.settings, &probed.renditions, probed.audio.is_some())),
            probed.clock,
        );
        let place = match &job.state_dir {
            Some(dir) => {
                // A run killed mid-write leaves temp files; they are never
                // referenced.
                crate::fsutil::remove_partials(dir).ok();
                Place::Dir(dir.clone())
            }
            None => Place::Output {
                dest: self.dest,
                dir: format!("{}{}", job.prefix, crate::state::STATE_DIR_NAME),
            },
        };
        if let Err(e) = self.dest.remove_incomplete(&job.prefix) {
            tracing::warn!(
                "cannot remove temp files under {}: {e}",
                self.dest.describe(&job.prefix)
            );
        }
        let earlier = CheckpointFile::load(&place)?.reported(self.reporter, &job.input);
        let (start, resuming) = match earlier {
            Some(old) if old.matches(&fresh) => (old, true),
            earlier => {
                let subtitles =
                    clear_previous_output(job, self.dest, earlier.as_ref(), &probed.names)?;
                let superseded = earlier.map(superseded_dirs).unwrap_or_default();
                let start = Checkpoint {
                    subtitles,
                    superseded,
                    ..fresh
                };
                (start, false)
            }
        };
        let checkpoint = CheckpointFile::create(place, start, resuming)?;
        Ok((checkpoint, resuming))
    }

    /// The output frame to take the thumbnail from, unless a resumed run
    /// already has it. The thumbnail comes from the encode's own decode
    /// pass, at 1 s (or mid-clip for shorter inputs), before any frame
    /// reaches an encoder.
    fn thumbnail_frame(&self, probed: &Probed, resuming: bool) -> Option<u64> {
        let key = format!("{}thumbnail.jpg", self.job.prefix);
        (!resuming || !self.dest.exists(&key)).then(|| {
            let duration = probed.info.duration;
            let at = if duration >= 2.0 { 1.0 } else { duration / 2.0 };
            (at * probed.clock.fps()).floor() as u64
        })
    }

    /// The renditions the checkpoint does not hold complete; announces the
    /// others as skipped.
    fn pending(&self, probed: &Probed, checkpoint: &CheckpointFile<'_>) -> Pending {
        let state = checkpoint.snapshot();
        let done = |name: &String| state.renditions.get(name).is_some_and(|r| r.done);
        let (complete, names): (Vec<String>, Vec<String>) =
            probed.names.iter().cloned().partition(done);
        for name in complete {
            self.reporter.report(Event::RenditionSkipped {
                input: self.job.input.clone(),
                rendition: name,
            });
        }
        let first_segment = names
            .iter()
            .map(|n| {
                state
                    .renditions
                    .get(n)
                    .map_or(0, |r| r.segments.len() as u32)
            })
            .min()
            .unwrap_or(0);
        Pending {
            names,
            first_segment,
        }
    }

    /// What the encode does: the pending renditions from their resume
    /// point (announced), and the thumbnail if one is wanted.
    fn encode_plan(
        &self,
        probed: &Probed,
        pending: &Pending,
        thumbnail_frame: Option<u64>,
    ) -> EncodePlan {
        if pending.first_segment > 0 && !pending.names.is_empty() {
            self.reporter.report(Event::Resume {
                input: self.job.input.clone(),
                from_segment: pending.first_segment,
            });
        }
        let is_pending = |name: &str| pending.names.iter().any(|n| n == name);
        EncodePlan {
            renditions: probed.renditions.clone(),
            source: (probed.video.display_width, probed.video.display_height),
            pending: probed
                .renditions
                .iter()
                .map(|r| is_pending(&r.name))
                .collect(),
            audio: probed.audio.is_some() && is_pending(AUDIO_RENDITION),
            first_segment: pending.first_segment,
            fps: probed.fps,
            video_index: probed.video.index,
            audio_index: probed.audio.as_ref().map(|a| a.index),
            rotation: probed.video.rotation,
            start_time: probed.video.start_time,
            thumbnail_frame,
        }
    }

    /// Writes the master playlist of the complete renditions and announces
    /// the input as done; returns the master's location.
    fn publish(
        &self,
        probed: &Probed,
        checkpoint: &CheckpointFile<'_>,
        cpu: BTreeMap<String, f64>,
    ) -> Result<String, HlsError> {
        let master = write_master(
            self.job,
            self.dest,
            self.settings,
            &probed.renditions,
            probed.audio.as_ref(),
            checkpoint,
        )?;
        self.tidy_superseded(checkpoint);
        self.reporter.report(Event::Done {
            input: self.job.input.clone(),
            master: master.clone(),
            cpu,
        });
        Ok(master)
    }

    /// Removes what an earlier run with other settings left in its
    /// rendition directories and the new package does not list (a dropped
    /// rung, segments of the other format, trailing segments). It runs after
    /// the new master is in place, so no published playlist names a removed
    /// file. The package is complete either way: a failure is a warning,
    /// and the next run tries again.
    fn tidy_superseded(&self, checkpoint: &CheckpointFile<'_>) {
        let state = checkpoint.snapshot();
        if state.superseded.is_empty() {
            return;
        }
        let init = self.settings.segment_format.init_segment();
        let tidied = state.superseded.iter().try_for_each(|dir| {
            let keep: HashSet<&str> = state
                .renditions
                .get(dir)
                .into_iter()
                .flat_map(|r| r.segments.iter().map(|s| s.uri.as_str()))
                .chain(["index.m3u8", "iframes.m3u8"])
                .chain(init)
                .collect();
            let prefix = format!("{}{dir}/", self.job.prefix);
            for key in self.dest.list(&prefix)? {
                let name = key.strip_prefix(&prefix).unwrap_or(&key);
                if !keep.contains(name) {
                    self.dest.delete(&key)?;
                }
            }
            Ok::<_, std::io::Error>(())
        });
        let result = tidied
            .map_err(|source| HlsError::Write {
                path: self.dest.describe(&self.job.prefix),
                source,
            })
            .and_then(|()| {
                checkpoint
                    .update(|cp| cp.superseded.clear())
                    .map_err(HlsError::from)
            });
        if let Err(e) = result {
            self.reporter.report(Event::Warning {
                input: self.job.input.clone(),
                message: format!("cannot remove what the earlier settings left: {e}"),
            });
        }
    }
}

/// The progress bar's renditions and the share of the work each is: video
/// by pixel count, audio a few percent.
fn progress_weights(renditions: &[Rendition], audio: bool) -> (Vec<String>, Vec<f64>) {
    const AUDIO_SHARE: f64 = 0.03;
    let video_share = if audio { 1.0 - AUDIO_SHARE } else { 1.0 };
    let mut names: Vec<String> = renditions.iter().map(|r| r.name.clone()).collect();
    let mut weights: Vec<f64> = work_weights(renditions)
        .iter()
        .map(|w| w * video_share)
        .collect();
    if audio {
        names.push(AUDIO_RENDITION.into());
        weights.push(AUDIO_SHARE);
    }
    (names, weights)
}

/// The rendition directories an earlier run wrote (and any it had still to
/// tidy itself), each once.
fn superseded_dirs(old: Checkpoint) -> Vec<String> {
    let mut dirs: Vec<String> = old.renditions.into_keys().chain(old.superseded).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Removes what an earlier run with other settings left, master first, so
/// nothing stale looks complete while the new encode runs. A master that
/// cannot be removed fails the input before anything is overwritten: the
/// earlier output then stays whole, where a new encode under the old master
/// would give players a master naming playlists that change or vanish.
/// Returns the subtitle group the old master carried, for the new one.
fn clear_previous_output(
    job: &Job,
    dest: &dyn Destination,
    earlier: Option<&Checkpoint>,
    names: &[String],
) -> Result<Vec<String>, HlsError> {
    let mut dirs: Vec<String> = names.to_vec();
    if let Some(old) = earlier {
        dirs.extend(old.renditions.keys().cloned());
    }
    let master = format!("{}master.m3u8", job.prefix);
    let subtitles = match read_text(dest, &master) {
        Some(text) => playlist::subtitle_group(&text),
        // No master: a crash after it was removed keeps the group here.
        None => earlier.map(|old| old.subtitles.clone()).unwrap_or_default(),
    };
    dest.delete(&master)
        .map_err(|source| HlsError::StaleMaster {
            path: dest.describe(&master),
            source,
        })?;
    // The master is gone, so failing here leaves nothing that looks
    // complete; going on would retry every delete against a lost server.
    for dir in dirs {
        for file in ["index.m3u8", "iframes.m3u8"] {
            let key = format!("{}{dir}/{file}", job.prefix);
            dest.delete(&key).map_err(|source| HlsError::Write {
                path: dest.describe(&key),
                source,
            })?;
        }
    }
    Ok(subtitles)
}

/// The text stored at `key`, when there is one.
fn read_text(dest: &dyn Destination, key: &str) -> Option<String> {
    dest.get(key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Writes the master playlist from the checkpoint's complete renditions.
fn write_master(
    job: &Job,
    dest: &dyn Destination,
    settings: &TranscodeSettings,
    renditions: &[Rendition],
    audio: Option<&AudioInfo>,
    checkpoint: &CheckpointFile<'_>,
) -> Result<String, HlsError> {
    let state = checkpoint.snapshot();
    let clock = state.clock;
    let audio_segments = audio
        .and_then(|_| state.renditions.get(AUDIO_RENDITION))
        .map(|r| r.segments.clone())
        .unwrap_or_default();
    let mut variants = Vec::new();
    for r in renditions {
        let Some(done) = state.renditions.get(&r.name).filter(|s| s.done) else {
            return Err(HlsError::Internal(format!(
                "rendition {} is incomplete",
                r.name
            )));
        };
        variants.push(Variant {
            uri: format!("{}/index.m3u8", r.name),
            iframe_uri: format!("{}/iframes.m3u8", r.name),
            bandwidth: Bandwidth::measure(&done.segments, &audio_segments, |s| s.bytes),
            iframe_bandwidth: Bandwidth::measure(&done.segments, &[], |s| {
                s.iframe.map_or(0, |i| i.1)
            }),
            video_codec: done.codec.clone().unwrap_or_else(|| "avc1.640028".into()),
            width: r.width,
            height: r.height,
            frame_rate: clock.fps(),
        });
    }
    let group = audio.map(|a| AudioGroup {
        uri: format!("{AUDIO_RENDITION}/index.m3u8"),
        codec: media::codecs::AAC_LC.into(),
        channels: 2,
        language: audio_language(settings, a),
    });
    let text = master_playlist(settings.segment_format, &variants, group.as_ref());
    let key = format!("{}master.m3u8", job.prefix);
    // Keep the subtitle group `captions --master` attached, and leave a
    // master that would not change untouched.
    let previous = read_text(dest, &key);
    let subtitles = previous
        .as_deref()
        .map(playlist::subtitle_group)
        .filter(|group| !group.is_empty())
        .unwrap_or_else(|| state.subtitles.clone());
    let text = playlist::with_subtitle_group(&text, &subtitles).map_err(HlsError::Internal)?;
    if previous.as_deref() == Some(text.as_str()) {
        return Ok(dest.describe(&key));
    }
    dest.put(&key, text.as_bytes())
        .map_err(|source| HlsError::Write {
            path: dest.describe(&key),
            source,
        })?;
    Ok(dest.describe(&key))
}

/// The audio rendition's language: the override, else the source's tag
/// when it is a valid BCP-47 tag, else `und`; a container's three-letter
/// code becomes the two-letter one where there is one (`eng` → `en`).
fn audio_language(settings: &TranscodeSettings, audio: &AudioInfo) -> String {
    use crate::language::{language_tag, shortest_language_tag};
    let tag = match &settings.audio_language {
        Some(tag) => tag.clone(),
        None => {
            language_tag(&audio.language).unwrap_or_else(|_| media::probe::UNDETERMINED.to_string())
        }
    };
    shortest_language_tag(&tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audio_language_is_the_override_else_a_valid_source_tag_else_und() {
        let source = |language: &str| AudioInfo {
            index: 1,
            codec: "aac".into(),
            channels: 2,
            sample_rate: 48_000,
            language: language.into(),
        };
        let mut settings = TranscodeSettings::default();
        assert_eq!(audio_language(&settings, &source("und")), "und");
        assert_eq!(audio_language(&settings, &source("en-gb")), "en-GB");
        assert_eq!(audio_language(&settings, &source("not a tag")), "und");
        assert_eq!(audio_language(&settings, &source("fre")), "fr");
        assert_eq!(audio_language(&settings, &source("eng")), "en");
        settings.audio_language = Some("fr".into());
        assert_eq!(audio_language(&settings, &source("en")), "fr");
    }

    #[test]
    fn the_audio_language_is_not_part_of_the_output_identity() {
        let plain = TranscodeSettings::default();
        let french = TranscodeSettings {
            audio_language: Some("fr".into()),
            ..TranscodeSettings::default()
        };
        assert_eq!(fingerprint(&plain), fingerprint(&french));
    }

    #[test]
    fn a_stale_master_that_cannot_be_removed_fails_the_input_and_keeps_the_earlier_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = crate::storage::LocalDir::new(dir.path());
        // A directory where the master is cannot be removed as a file.
        dest.put("clip/master.m3u8/held", b"x").expect("put");
        dest.put("clip/720p/index.m3u8", b"#EXTM3U").expect("put");
        let job = Job {
            position: crate::progress::Position::ONLY,
            input: "clip.mp4".into(),
            open: "clip.mp4".into(),
            prefix: "clip/".into(),
            state_dir: Some(dir.path().join("clip")),
            identity: String::new(),
        };
        let err = clear_previous_output(&job, &dest, None, &["720p".into()])
            .expect_err("the master cannot be removed");
        assert!(matches!(err, HlsError::StaleMaster { .. }), "{err:?}");
        assert!(err.to_string().contains("clip/master.m3u8"), "{err}");
        assert!(dest.exists("clip/720p/index.m3u8"));
    }

    #[test]
    fn big_renditions_get_more_encoder_threads() {
        let plan = Ladder::default().plan(1920, 1080);
        let threads = rendition_threads(&plan, 2);
        assert_eq!(threads.len(), 5);
        assert!(threads[0] >= 2);
        assert!(threads.iter().all(|&t| t >= 1));
    }
}
