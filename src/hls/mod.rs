//! `transcode-hls`: one input in, an adaptive-bitrate HLS package out.
//!
//! Data flow for one input: probe → thumbnail → ladder plan → one demux and
//! one video decode on this thread → shared frames fanned out over bounded
//! channels to one worker per rendition (a rayon pool sized to the workers)
//! → each worker scales, encodes and cuts segments on the shared
//! [`clock::SegmentClock`] → media playlists as each rendition completes →
//! the master playlist last, only when all are complete. A
//! [`checkpoint`] after every segment makes a re-run resume.

pub mod checkpoint;
pub mod clock;
mod fanout;
pub mod ladder;
pub mod playlist;
mod worker;

use crate::media::mux::OUTPUT_ORIGIN_SECS;
use crate::media::probe::{describe, require_video, MediaInfo};
use crate::media::video::{H264Settings, VideoDecoder};
use crate::media::{self, audio::AudioTranscoder, ff, MediaError};
use crate::progress::{Event, Reporter};
use crate::storage::Destination;
use crate::units::Bitrate;
use crate::CancelFlag;
use checkpoint::{Checkpoint, CheckpointFile};
use clock::SegmentClock;
use ladder::{Ladder, Rendition};
use playlist::{master_playlist, AudioGroup, Bandwidth, SegmentFormat, Variant};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;
use worker::{AudioJob, Finish, Msg, Shared, VideoJob, AUDIO_RENDITION};

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
    /// CPU threads to use in total (0: all cores). Not part of the output's
    /// identity, so changing it does not invalidate a checkpoint.
    #[serde(skip)]
    pub threads: usize,
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
            threads: 0,
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
    /// Storing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
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
    /// The input's state directory, for the checkpoint
    /// ([`crate::state::OutputState::input_dir`]).
    pub state_dir: PathBuf,
    /// Identity of the input for the checkpoint (size, mtime...).
    pub identity: String,
}

/// What a finished input produced.
#[derive(Debug, Clone)]
pub struct Published {
    /// Location of the master playlist.
    pub master: String,
    /// Renditions encoded by this run (others were resumed complete).
    pub encoded: Vec<String>,
}

/// Frame rate of the output: the source's average rate, snapped to a
/// standard rate when within 1%, capped at `max_fps`.
pub fn output_frame_rate(avg: (i32, i32), max_fps: u32) -> ff::Rational {
    const STANDARD: &[(i32, i32)] = &[
        (24000, 1001),
        (24, 1),
        (25, 1),
        (30000, 1001),
        (30, 1),
        (48, 1),
        (50, 1),
        (60000, 1001),
        (60, 1),
    ];
    let fps = if avg.1 > 0 {
        f64::from(avg.0) / f64::from(avg.1)
    } else {
        0.0
    };
    if !(fps.is_finite() && fps > 0.0) {
        return ff::Rational(25, 1);
    }
    if fps > f64::from(max_fps) + 0.01 {
        return ff::Rational(max_fps.max(1) as i32, 1);
    }
    let closest = STANDARD.iter().min_by(|a, b| {
        let da = (fps / (f64::from(a.0) / f64::from(a.1)) - 1.0).abs();
        let db = (fps / (f64::from(b.0) / f64::from(b.1)) - 1.0).abs();
        da.total_cmp(&db)
    });
    if let Some(&(n, d)) = closest {
        if (fps / (f64::from(n) / f64::from(d)) - 1.0).abs() < 0.005 {
            return ff::Rational(n, d);
        }
    }
    ff::Rational((fps.round() as i32).max(1), 1)
}

fn fingerprint(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Threads for each x264 encoder: a share of the cores proportional to its
/// pixel count, so the large renditions do not become the bottleneck while
/// the small ones idle.
pub fn encoder_threads(renditions: &[Rendition], cores: usize) -> Vec<usize> {
    let weights = work_weights(renditions);
    weights
        .iter()
        .map(|w| ((cores as f64 * 1.5 * w).round() as usize).clamp(1, 16))
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
    let mut ictx = media::open_input(&job.open).map_err(|e| HlsError::Input(e.to_string()))?;
    let info = describe(&job.input, &ictx);
    let video = require_video(&info)
        .map_err(|e| HlsError::Input(e.to_string()))?
        .clone();
    let audio = info.audio.first().cloned();
    let fps = output_frame_rate(video.fps_fraction, settings.max_fps);
    let clock = SegmentClock::new(
        fps.numerator() as u32,
        fps.denominator() as u32,
        settings.segment_ms,
    );
    reporter.report(Event::Probe {
        input: job.input.clone(),
        width: video.display_width,
        height: video.display_height,
        duration: info.duration,
        fps: clock.fps(),
        audio: audio.is_some(),
    });
    let renditions = settings
        .ladder
        .plan(video.display_width, video.display_height);
    let mut names: Vec<String> = renditions.iter().map(|r| r.name.clone()).collect();
    // Audio costs a few percent of the video work; the progress weights say so.
    const AUDIO_SHARE: f64 = 0.03;
    let video_share = if audio.is_some() {
        1.0 - AUDIO_SHARE
    } else {
        1.0
    };
    let mut weights: Vec<f64> = work_weights(&renditions)
        .iter()
        .map(|w| w * video_share)
        .collect();
    if audio.is_some() {
        names.push(AUDIO_RENDITION.into());
        weights.push(AUDIO_SHARE);
    }
    reporter.report(Event::Ladder {
        input: job.input.clone(),
        renditions: names.clone(),
        weights,
    });

    let fresh = Checkpoint::new(
        job.identity.clone(),
        fingerprint(&(settings, &renditions, audio.is_some())),
        clock,
    );
    let cp_path = CheckpointFile::path_in(&job.state_dir);
    // A run killed mid-write leaves temp files; they are never referenced.
    crate::fsutil::remove_partials(&job.state_dir).ok();
    if let Err(e) = dest.remove_incomplete(&job.prefix) {
        tracing::warn!(
            "cannot remove temp files under {}: {e}",
            dest.describe(&job.prefix)
        );
    }
    let previous = CheckpointFile::load(&cp_path)?
        .reported(reporter, &job.input)
        .filter(|old| old.matches(&fresh));
    let resuming = previous.is_some();
    if !resuming {
        clear_previous_output(job, dest, &cp_path, &names);
    }
    let checkpoint = CheckpointFile::create(cp_path, previous.unwrap_or(fresh))?;
    let key = |k: &str| format!("{}{k}", job.prefix);

    // The thumbnail comes from the encode's own decode pass, at 1 s (or
    // mid-clip for shorter inputs), before any frame reaches an encoder.
    let thumbnail_at = (!resuming || !dest.exists(&key("thumbnail.jpg"))).then(|| {
        let at = if info.duration >= 2.0 {
            1.0
        } else {
            info.duration / 2.0
        };
        (at * clock.fps()).floor() as u64
    });

    let state = checkpoint.snapshot();
    let pending: Vec<&String> = names
        .iter()
        .filter(|n| !state.renditions.get(*n).is_some_and(|r| r.done))
        .collect();
    for name in names.iter().filter(|n| !pending.contains(n)) {
        reporter.report(Event::RenditionSkipped {
            input: job.input.clone(),
            rendition: name.clone(),
        });
    }
    let first_segment = pending
        .iter()
        .map(|n| {
            state
                .renditions
                .get(*n)
                .map_or(0, |r| r.segments.len() as u32)
        })
        .min()
        .unwrap_or(0);
    if !pending.is_empty() || thumbnail_at.is_some() {
        if first_segment > 0 && !pending.is_empty() {
            reporter.report(Event::Resume {
                input: job.input.clone(),
                from_segment: first_segment,
            });
        }
        let plan = EncodePlan {
            renditions: renditions
                .iter()
                .filter(|r| pending.contains(&&r.name))
                .cloned()
                .collect(),
            audio: audio.is_some() && pending.iter().any(|n| *n == AUDIO_RENDITION),
            first_segment,
            fps,
            video_index: video.index,
            audio_index: audio.as_ref().map(|a| a.index),
            rotation: video.rotation,
            start_time: video.start_time,
            thumbnail_frame: thumbnail_at,
        };
        encode(
            &mut ictx,
            &info,
            job,
            dest,
            settings,
            reporter,
            cancel,
            &checkpoint,
            plan,
        )?;
    }

    let master = write_master(
        job,
        dest,
        settings,
        &renditions,
        audio.as_ref(),
        &checkpoint,
    )?;
    reporter.report(Event::Done {
        input: job.input.clone(),
        master: master.clone(),
    });
    Ok(Published {
        master,
        encoded: pending.into_iter().cloned().collect(),
    })
}

/// Removes what an earlier run with other settings left, master first, so
/// nothing stale looks complete while the new encode runs.
fn clear_previous_output(
    job: &Job,
    dest: &dyn Destination,
    cp_path: &std::path::Path,
    names: &[String],
) {
    let mut dirs: Vec<String> = names.to_vec();
    if let Ok(bytes) = std::fs::read(cp_path) {
        if let Ok(old) = serde_json::from_slice::<Checkpoint>(&bytes) {
            dirs.extend(old.renditions.into_keys());
        }
    }
    let _ = dest.delete(&format!("{}master.m3u8", job.prefix));
    for dir in dirs {
        for file in ["index.m3u8", "iframes.m3u8"] {
            let _ = dest.delete(&format!("{}{dir}/{file}", job.prefix));
        }
    }
    let _ = std::fs::remove_file(cp_path);
}

struct EncodePlan {
    renditions: Vec<Rendition>,
    audio: bool,
    first_segment: u32,
    fps: ff::Rational,
    video_index: usize,
    audio_index: Option<usize>,
    rotation: u32,
    start_time: f64,
    /// Output frame to take the thumbnail from, if one is wanted.
    thumbnail_frame: Option<u64>,
}

#[allow(clippy::too_many_arguments)]
fn encode(
    ictx: &mut ff::format::context::Input,
    info: &MediaInfo,
    job: &Job,
    dest: &dyn Destination,
    settings: &TranscodeSettings,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    checkpoint: &CheckpointFile,
    plan: EncodePlan,
) -> Result<(), HlsError> {
    let clock = checkpoint.snapshot().clock;
    let resume_at = clock.frame_seconds(clock.first_frame(plan.first_segment));
    if plan.first_segment > 0 {
        // Seek to the keyframe at or before the resume boundary (with a
        // little margin for inputs whose keyframe index is coarse).
        let target = ((plan.start_time + resume_at - 0.5).max(0.0)
            * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        ictx.seek(target, ..target).map_err(|e| {
            HlsError::Input(format!("cannot seek to {resume_at:.1}s to resume: {e}"))
        })?;
    }
    let video_stream = ictx
        .stream(plan.video_index)
        .ok_or_else(|| HlsError::Input("video stream vanished".into()))?;
    let anchor = (plan.first_segment == 0).then_some(plan.start_time);
    let mut decoder = VideoDecoder::new(&video_stream, plan.rotation, plan.fps, anchor)
        .map_err(|e| HlsError::Input(e.to_string()))?;
    let origin_frames = (plan.start_time * f64::from(plan.fps.numerator())
        / f64::from(plan.fps.denominator()))
    .round() as i64;
    let rate = i64::from(media::audio::SAMPLE_RATE);
    let audio_job = match (plan.audio, plan.audio_index.and_then(|i| ictx.stream(i))) {
        (true, Some(stream)) => {
            let offset =
                ((OUTPUT_ORIGIN_SECS as f64 - plan.start_time) * rate as f64).round() as i64;
            // Feed the encoder two AAC frames before the resume point so the
            // first packet kept (at the boundary) is properly primed; the
            // audio worker drops the packets before the boundary.
            let drop_before =
                ((OUTPUT_ORIGIN_SECS as f64 + resume_at) * rate as f64).round() as i64 - 2048;
            let drop_before = if plan.first_segment > 0 {
                drop_before
            } else {
                i64::MIN
            };
            Some(AudioJob {
                transcoder: AudioTranscoder::new(
                    &stream,
                    settings.audio_bitrate.0,
                    settings.segment_format == SegmentFormat::Fmp4,
                    offset,
                    drop_before,
                )
                .map_err(|e| HlsError::Input(format!("audio: {e}")))?,
            })
        }
        _ => None,
    };
    let cores = if settings.threads > 0 {
        settings.threads
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    };
    let threads = encoder_threads(&plan.renditions, cores);
    let total_frames = (info.duration * clock.fps()).ceil().max(1.0) as u64;
    let shared = Shared {
        input: &job.input,
        dest,
        prefix: &job.prefix,
        clock,
        format: settings.segment_format,
        checkpoint,
        reporter,
        total_frames,
        first_segment: plan.first_segment,
    };
    let keyint = (u64::from(settings.segment_ms) * u64::from(clock.fps_num))
        .div_ceil(1000 * u64::from(clock.fps_den)) as u32
        + 1;
    let video_jobs: Vec<VideoJob> = plan
        .renditions
        .iter()
        .zip(&threads)
        .map(|(r, &t)| VideoJob {
            name: r.name.clone(),
            h264: H264Settings {
                width: r.width,
                height: r.height,
                bitrate: r.bitrate.0,
                preset: settings.preset.clone(),
                fps: plan.fps,
                keyint,
                threads: t,
                global_header: settings.segment_format == SegmentFormat::Fmp4,
            },
            origin_frames,
        })
        .collect();
    let workers = video_jobs.len() + usize::from(audio_job.is_some());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("rendition-{i}"))
        .build()
        .map_err(|e| HlsError::Input(format!("cannot start worker threads: {e}")))?;
    let results: Mutex<Vec<Result<Finish, HlsError>>> = Mutex::new(Vec::new());
    let first_frame = clock.first_frame(plan.first_segment);
    let mut demux_error: Option<HlsError> = None;
    pool.in_place_scope(|scope| {
        let mut video_tx: Vec<SyncSender<Msg<ff::frame::Video>>> = Vec::new();
        for vj in video_jobs {
            let (tx, rx) = sync_channel(6);
            video_tx.push(tx);
            let shared = &shared;
            let results = &results;
            scope.spawn(move |_| {
                let r = worker::run_video(vj, shared, rx);
                if let Ok(mut all) = results.lock() {
                    all.push(r);
                }
            });
        }
        let mut audio_tx = None;
        if let Some(aj) = audio_job {
            let (tx, rx) = sync_channel(64);
            audio_tx = Some(tx);
            let shared = &shared;
            let results = &results;
            scope.spawn(move |_| {
                let r = worker::run_audio(aj, shared, rx);
                if let Ok(mut all) = results.lock() {
                    all.push(r);
                }
            });
        }
        let thumbnail = plan.thumbnail_frame.map(|frame| fanout::ThumbnailSlot {
            frame,
            key: format!("{}thumbnail.jpg", job.prefix),
            dest,
            reporter,
            input: &job.input,
        });
        let mut fan = fanout::FrameFanOut::new(
            video_tx,
            origin_frames,
            first_frame,
            decoder.output_time_base(plan.fps),
            thumbnail,
        );
        demux_error = demux(ictx, &plan, &mut decoder, &mut fan, audio_tx.as_ref(), cancel)
            .and_then(|()| {
                decoder.finish(&mut |f| fan.offer(f))?;
                fan.flush()?;
                let ended_at = clock.frame_seconds(fan.frames_end().unwrap_or(0));
                let encoded_all = !fan.satisfied() && plan.first_segment == 0;
                if encoded_all && info.duration > 2.0 && ended_at < info.duration * 0.9 {
                    return Err(HlsError::Input(format!(
                        "the video ends after {ended_at:.1}s of the {:.1}s the container declares: the file is truncated or damaged",
                        info.duration
                    )));
                }
                fan.end();
                if let Some(tx) = &audio_tx {
                    let _ = tx.send(Msg::End);
                }
                Ok(())
            })
            .err();
        drop(fan);
        drop(audio_tx);
    });
    let results = results.into_inner().unwrap_or_default();
    for r in results {
        r?;
    }
    if let Some(e) = demux_error {
        return Err(e);
    }
    if cancel.load(Ordering::SeqCst) {
        return Err(HlsError::Interrupted);
    }
    Ok(())
}

/// Reads packets until the end of the input, feeding the video decoder and
/// the audio worker. Returns an error for read failures and interrupts.
fn demux(
    ictx: &mut ff::format::context::Input,
    plan: &EncodePlan,
    decoder: &mut VideoDecoder,
    fan: &mut fanout::FrameFanOut<'_>,
    audio_tx: Option<&SyncSender<Msg<ff::Packet>>>,
    cancel: &CancelFlag,
) -> Result<(), HlsError> {
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(HlsError::Interrupted);
        }
        let mut packet = ff::Packet::empty();
        match packet.read(ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => return Ok(()),
            Err(e) => {
                return Err(HlsError::Input(format!(
                    "read error: {e} (the file may be truncated or damaged)"
                )))
            }
        }
        let index = packet.stream();
        if index == plan.video_index {
            decoder.push(&packet, &mut |f| fan.offer(f))?;
            if fan.satisfied() && audio_tx.is_none() {
                // Only the thumbnail was wanted, and it is written.
                return Ok(());
            }
        } else if Some(index) == plan.audio_index {
            if let Some(tx) = audio_tx {
                tx.send(Msg::Item(packet))
                    .map_err(|_| HlsError::Input("the audio worker stopped".into()))?;
            }
        }
    }
}

fn write_master(
    job: &Job,
    dest: &dyn Destination,
    settings: &TranscodeSettings,
    renditions: &[Rendition],
    audio: Option<&media::probe::AudioInfo>,
    checkpoint: &CheckpointFile,
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
            return Err(HlsError::Input(format!(
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
        language: a.language.clone(),
    });
    let text = master_playlist(settings.segment_format, &variants, group.as_ref());
    let key = format!("{}master.m3u8", job.prefix);
    dest.put(&key, text.as_bytes())
        .map_err(|source| HlsError::Write {
            path: dest.describe(&key),
            source,
        })?;
    Ok(dest.describe(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_snap_to_standard_values() {
        assert_eq!(
            output_frame_rate((2997, 100), 60),
            ff::Rational(30000, 1001)
        );
        assert_eq!(output_frame_rate((30, 1), 60), ff::Rational(30, 1));
        assert_eq!(output_frame_rate((25, 1), 60), ff::Rational(25, 1));
        assert_eq!(
            output_frame_rate((24000, 1001), 60),
            ff::Rational(24000, 1001)
        );
        assert_eq!(output_frame_rate((2999, 100), 60), ff::Rational(30, 1));
        assert_eq!(output_frame_rate((120, 1), 60), ff::Rational(60, 1));
        assert_eq!(output_frame_rate((0, 0), 60), ff::Rational(25, 1));
        assert_eq!(output_frame_rate((1500, 100), 60), ff::Rational(15, 1));
    }

    #[test]
    fn big_renditions_get_more_encoder_threads() {
        let plan = Ladder::default().plan(1920, 1080);
        let threads = encoder_threads(&plan, 2);
        assert_eq!(threads.len(), 5);
        assert!(threads[0] >= 2);
        assert!(threads.iter().all(|&t| t >= 1));
    }
}
