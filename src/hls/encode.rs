//! The encode of one input: one demux and one video decode on the calling
//! thread, every decoded frame handed to a pipeline of rendition groups.
//!
//! [`encode`] seeks to the resume point, opens the decoder and the audio
//! transcoder, plans where each rendition's pictures come from and which
//! group makes them ([`Plan`]), one x264 encoder per pending rendition,
//! then runs the group workers in a rayon pool sized to them while this
//! thread demuxes ([`Demux`]). The workers' results are collected once all
//! have ended; a worker's own error wins over the demux side's report that
//! it stopped.

use super::checkpoint::CheckpointFile;
use super::clock::SegmentClock;
use super::fanout::{FirstGroup, FrameFanOut, ThumbnailSlot, WorkerTx};
use super::ladder::Rendition;
use super::scaling::Plan;
use super::worker::{
    self, AudioJob, Finish, GroupJob, GroupWorker, MemberJob, Msg, Shared, VideoJob,
    AUDIO_RENDITION,
};
use super::{rendition_threads, HlsError, Run};
use crate::cpu::{self, Helpers, Ledger, Stage};
use crate::media::audio::{AudioTranscoder, SAMPLE_RATE};
use crate::media::ff;
use crate::media::mux::{SegmentFormat, OUTPUT_ORIGIN_SECS};
use crate::media::probe::MediaInfo;
use crate::media::video::{cores, H264Settings, VideoDecoder};
use crate::CancelFlag;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;

/// What one encode pass does.
pub(super) struct EncodePlan {
    /// The planned video renditions, largest first.
    pub renditions: Vec<Rendition>,
    /// Which of them this pass encodes.
    pub pending: Vec<bool>,
    /// Size of the decoded (rotated) picture.
    pub source: (u32, u32),
    /// Whether the audio rendition is encoded.
    pub audio: bool,
    /// The segment the encode starts at (0, or the resume point).
    pub first_segment: u32,
    /// Output frame rate.
    pub fps: ff::Rational,
    /// Stream index of the video.
    pub video_index: usize,
    /// Stream index of the audio, if the input has audio.
    pub audio_index: Option<usize>,
    /// Display rotation of the video, in degrees.
    pub rotation: u32,
    /// Stream time (seconds) of the video's first frame.
    pub start_time: f64,
    /// Output frame to take the thumbnail from, if one is wanted.
    pub thumbnail_frame: Option<u64>,
}

/// What every worker hands back when it ends.
type Results = Mutex<Vec<Result<Finish, HlsError>>>;

/// Encodes `plan` from the opened input, recording segments in
/// `checkpoint`.
pub(super) fn encode(
    run: &Run<'_>,
    ictx: &mut ff::format::context::Input,
    info: &MediaInfo,
    checkpoint: &CheckpointFile<'_>,
    plan: EncodePlan,
    ledger: &Ledger,
) -> Result<(), HlsError> {
    cpu::reset();
    let clock = checkpoint.snapshot().clock;
    let resume_at = clock.frame_seconds(clock.first_frame(plan.first_segment));
    if plan.first_segment > 0 {
        seek_before(ictx, plan.start_time, resume_at)?;
    }
    let (decoder, decoder_threads) = Helpers::around(|| open_decoder(ictx, &plan));
    let mut decoder = decoder?;
    let origin_frames = (plan.start_time * f64::from(plan.fps.numerator())
        / f64::from(plan.fps.denominator()))
    .round() as i64;
    let audio_job = audio_job(ictx, &plan, run, resume_at)?;
    let cores = cores(run.settings.threads);
    let scale_plan = Plan::new(
        &plan.renditions,
        plan.source,
        &plan.pending,
        run.settings.scaling,
        cores,
    );
    let video_jobs = video_jobs(&plan, &scale_plan, run, clock, origin_frames, cores);
    let shared = Shared {
        input: &run.job.input,
        dest: run.dest,
        prefix: &run.job.prefix,
        clock,
        format: run.settings.segment_format,
        checkpoint,
        reporter: run.reporter,
        total_frames: (info.duration * clock.fps()).ceil().max(1.0) as u64,
        first_segment: plan.first_segment,
        cpu: ledger,
    };
    let pool = worker_pool(scale_plan.groups.len() + usize::from(audio_job.is_some()))?;
    let results: Results = Mutex::new(Vec::new());
    let mut demux_error: Option<HlsError> = None;
    pool.in_place_scope(|scope| {
        let inline = cores == 1;
        let video = match spawn_groups(scope, &results, &shared, &scale_plan, video_jobs, inline) {
            Ok(video) => video,
            Err(e) => {
                demux_error = Some(e);
                return;
            }
        };
        let audio_tx = audio_job.map(|job| {
            let (tx, rx) = sync_channel(64);
            spawn_worker(scope, &results, || worker::run_audio(job, &shared, rx));
            tx
        });
        let fan = FrameFanOut::new(
            video,
            origin_frames,
            clock.first_frame(plan.first_segment),
            decoder.output_time_base(plan.fps),
            thumbnail_slot(run, plan.thumbnail_frame),
        );
        let mut demux = Demux {
            ictx: &mut *ictx,
            decoder: &mut decoder,
            plan: &plan,
            fan,
            audio_tx,
        };
        demux_error = demux
            .run(run.cancel)
            .and_then(|()| demux.finish(clock, info.duration))
            .err();
        cpu::add("", Stage::Decode, decoder_threads.cpu());
        ledger.collect();
        // Dropping the senders stops the workers that did not get `End`.
    });
    outcome(results, demux_error, run.cancel)
}

/// Seeks to the keyframe at or before the resume boundary `resume_at`
/// (with a little margin for inputs whose keyframe index is coarse).
fn seek_before(
    ictx: &mut ff::format::context::Input,
    start_time: f64,
    resume_at: f64,
) -> Result<(), HlsError> {
    let target =
        ((start_time + resume_at - 0.5).max(0.0) * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
    ictx.seek(target, ..target)
        .map_err(|e| HlsError::Input(format!("cannot seek to {resume_at:.1}s to resume: {e}")))
}

fn open_decoder(
    ictx: &ff::format::context::Input,
    plan: &EncodePlan,
) -> Result<VideoDecoder, HlsError> {
    let stream = ictx
        .stream(plan.video_index)
        .ok_or_else(|| HlsError::Internal("video stream vanished".into()))?;
    let anchor = (plan.first_segment == 0).then_some(plan.start_time);
    VideoDecoder::new(&stream, plan.rotation, plan.fps, anchor)
        .map_err(|e| HlsError::Input(e.to_string()))
}

/// The audio rendition's transcoder, when the plan encodes audio.
fn audio_job(
    ictx: &ff::format::context::Input,
    plan: &EncodePlan,
    run: &Run<'_>,
    resume_at: f64,
) -> Result<Option<AudioJob>, HlsError> {
    let Some(stream) = plan
        .audio_index
        .and_then(|i| ictx.stream(i))
        .filter(|_| plan.audio)
    else {
        return Ok(None);
    };
    let rate = f64::from(SAMPLE_RATE);
    let offset = ((OUTPUT_ORIGIN_SECS as f64 - plan.start_time) * rate).round() as i64;
    // Feed the encoder two AAC frames before the resume point so the first
    // packet kept (at the boundary) is properly primed; the audio worker
    // drops the packets before the boundary.
    let drop_before = if plan.first_segment > 0 {
        ((OUTPUT_ORIGIN_SECS as f64 + resume_at) * rate).round() as i64 - 2048
    } else {
        i64::MIN
    };
    let transcoder = AudioTranscoder::new(
        &stream,
        run.settings.audio_bitrate.0,
        run.settings.segment_format == SegmentFormat::Fmp4,
        offset,
        drop_before,
    )
    .map_err(|e| HlsError::Input(format!("audio: {e}")))?;
    Ok(Some(AudioJob { transcoder }))
}

/// One job per member of `scale_plan`: the encoded ones get an x264
/// encoder each, the cores shared by pixel count, an IDR at least once per
/// segment.
fn video_jobs(
    plan: &EncodePlan,
    scale_plan: &Plan,
    run: &Run<'_>,
    clock: SegmentClock,
    origin_frames: i64,
    cores: usize,
) -> Vec<VideoJob> {
    let settings = run.settings;
    let encoded: Vec<Rendition> = scale_plan
        .members
        .iter()
        .filter(|m| m.encode)
        .map(|m| plan.renditions[m.rendition].clone())
        .collect();
    let mut threads = rendition_threads(&encoded, cores).into_iter();
    let keyint = (u64::from(settings.segment_ms) * u64::from(clock.fps_num))
        .div_ceil(1000 * u64::from(clock.fps_den)) as u32
        + 1;
    scale_plan
        .members
        .iter()
        .map(|m| {
            let r = &plan.renditions[m.rendition];
            let threads = if m.encode { threads.next() } else { None };
            VideoJob {
                name: r.name.clone(),
                h264: H264Settings {
                    width: r.width,
                    height: r.height,
                    bitrate: r.bitrate.0,
                    preset: settings.preset.clone(),
                    fps: plan.fps,
                    keyint,
                    threads: threads.unwrap_or(1),
                    global_header: settings.segment_format == SegmentFormat::Fmp4,
                },
                origin_frames,
            }
        })
        .collect()
}

/// Starts one worker per group of `scale_plan`, each feeding the next;
/// returns where decoded frames go (none when there is no video work).
/// With `inline`, a single group is not started but returned, to run on
/// the demux thread.
fn spawn_groups<'s>(
    scope: &rayon::Scope<'s>,
    results: &'s Results,
    shared: &'s Shared<'s>,
    scale_plan: &Plan,
    jobs: Vec<VideoJob>,
    inline: bool,
) -> Result<Option<FirstGroup<'s>>, HlsError> {
    let mut jobs: Vec<Option<VideoJob>> = jobs.into_iter().map(Some).collect();
    let mut next: Option<WorkerTx> = None;
    for (g, range) in scale_plan.groups.iter().enumerate().rev() {
        let members: Vec<MemberJob> = range
            .clone()
            .filter_map(|i| {
                Some(MemberJob {
                    member: scale_plan.members[i].clone(),
                    index: i,
                    job: jobs[i].take()?,
                })
            })
            .collect();
        let name = members
            .first()
            .map(|m| m.job.name.clone())
            .unwrap_or_default();
        let group = GroupJob {
            members,
            forward: scale_plan.forwarded(g),
            next: next.take().map(|(_, tx)| tx),
        };
        if inline && scale_plan.groups.len() == 1 {
            let worker = GroupWorker::new(group, shared)?;
            return Ok(Some(FirstGroup::Inline(Box::new(worker))));
        }
        let (tx, rx) = sync_channel(6);
        spawn_worker(scope, results, move || worker::run_group(group, shared, rx));
        next = Some((name, tx));
    }
    Ok(next.map(FirstGroup::Thread))
}

/// A pool with one thread per worker.
fn worker_pool(workers: usize) -> Result<rayon::ThreadPool, HlsError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .thread_name(|i| format!("rendition-{i}"))
        .build()
        .map_err(|e| HlsError::Internal(format!("cannot start worker threads: {e}")))
}

/// Runs one worker in `scope`, keeping its result.
fn spawn_worker<'s>(
    scope: &rayon::Scope<'s>,
    results: &'s Results,
    work: impl FnOnce() -> Result<Finish, HlsError> + Send + 's,
) {
    scope.spawn(move |_| {
        let r = work();
        if let Ok(mut all) = results.lock() {
            all.push(r);
        }
    });
}

fn thumbnail_slot<'a>(run: &Run<'a>, frame: Option<u64>) -> Option<ThumbnailSlot<'a>> {
    frame.map(|frame| ThumbnailSlot {
        frame,
        key: format!("{}thumbnail.jpg", run.job.prefix),
        dest: run.dest,
        reporter: run.reporter,
        input: &run.job.input,
    })
}

/// The first failure: a worker's, then the demux side's, then an
/// interrupt.
fn outcome(
    results: Results,
    demux_error: Option<HlsError>,
    cancel: &CancelFlag,
) -> Result<(), HlsError> {
    for r in results.into_inner().unwrap_or_default() {
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

/// The demux thread's side: reads packets, decodes the video once into the
/// fan-out and passes audio packets to the audio worker.
struct Demux<'i, 'f> {
    ictx: &'i mut ff::format::context::Input,
    decoder: &'i mut VideoDecoder,
    plan: &'i EncodePlan,
    fan: FrameFanOut<'f>,
    audio_tx: Option<SyncSender<Msg<ff::Packet>>>,
}

impl Demux<'_, '_> {
    /// Reads packets until the end of the input, feeding the video decoder
    /// and the audio worker. Returns an error for read failures and
    /// interrupts.
    fn run(&mut self, cancel: &CancelFlag) -> Result<(), HlsError> {
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Err(HlsError::Interrupted);
            }
            let mut packet = ff::Packet::empty();
            match cpu::time("", Stage::Demux, || packet.read(self.ictx)) {
                Ok(()) => {}
                Err(ff::Error::Eof) => return Ok(()),
                Err(e) => {
                    return Err(HlsError::Input(format!(
                        "read error: {e} (the file may be truncated or damaged)"
                    )))
                }
            }
            let index = packet.stream();
            if index == self.plan.video_index {
                let fan = &mut self.fan;
                cpu::time("", Stage::Decode, || {
                    self.decoder.push(&packet, &mut |f| {
                        cpu::time("", Stage::Handoff, || fan.offer(f))
                    })
                })?;
                if self.fan.satisfied() && self.audio_tx.is_none() {
                    // Only the thumbnail was wanted, and it is written.
                    return Ok(());
                }
            } else if Some(index) == self.plan.audio_index {
                if let Some(tx) = &self.audio_tx {
                    tx.send(Msg::Item(packet)).map_err(|_| HlsError::Worker {
                        rendition: AUDIO_RENDITION.into(),
                        reason: "the worker stopped".into(),
                    })?;
                }
            }
        }
    }

    /// At the end of the input: drains the decoder, checks the video ran
    /// as long as the container declares (`duration`), and tells every
    /// worker the input ended.
    fn finish(&mut self, clock: SegmentClock, duration: f64) -> Result<(), HlsError> {
        let fan = &mut self.fan;
        cpu::time("", Stage::Decode, || {
            self.decoder
                .finish(&mut |f| cpu::time("", Stage::Handoff, || fan.offer(f)))
        })?;
        self.fan.flush()?;
        let ended_at = clock.frame_seconds(self.fan.frames_end().unwrap_or(0));
        let encoded_all = !self.fan.satisfied() && self.plan.first_segment == 0;
        if encoded_all && duration > 2.0 && ended_at < duration * 0.9 {
            return Err(HlsError::Input(format!(
                "the video ends after {ended_at:.1}s of the {duration:.1}s the container declares: the file is truncated or damaged"
            )));
        }
        self.fan.end()?;
        if let Some(tx) = &self.audio_tx {
            let _ = tx.send(Msg::End);
        }
        Ok(())
    }
}
