//! The one clap definition: raw arguments as typed, before any
//! validation. Completions and man pages are generated from it; the
//! per-subcommand `settings` functions turn these into validated runs.
//!
//! Numeric values arrive as text on purpose: the same parser then checks a
//! flag, its `VIDPIPE_*` variable and its config key, with the same
//! message. Checks that involve several flags live in `settings` too, so a
//! value coming from the config file is held to the same rules.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Publish video: HLS transcoding, resumable S3 uploads, segmented
/// captions, voice commentary and safe cleanup, driven directly through
/// libav.
#[derive(Debug, Parser)]
#[command(
    name = "vidpipe",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success, 1 some inputs failed, 2 usage or configuration error, 130 interrupted."
)]
pub struct Cli {
    /// How to show progress: bars on a terminal (auto), bars, one JSON
    /// object per line on stdout (json), or nothing.
    #[arg(long, global = true, value_enum, env = "VIDPIPE_PROGRESS")]
    pub progress: Option<ProgressMode>,

    /// More log output on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output on stderr (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// YAML config file (default: ./vidpipe.yaml when it exists).
    #[arg(long, global = true, env = "VIDPIPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for
    /// s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and
    /// region come from the standard AWS variables and profiles.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// How long an S3 request that fails for a passing reason (connection
    /// refused or reset, 5xx, SlowDown) is retried before the input fails,
    /// e.g. 30s or 5m [default: 2m].
    #[arg(
        long,
        global = true,
        env = "VIDPIPE_RETRY_FOR",
        value_name = "DURATION"
    )]
    pub retry_for: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcode videos into adaptive-bitrate HLS (master, media and
    /// I-frame playlists, thumbnail), resuming after a crash.
    TranscodeHls(TranscodeArgs),
    /// Upload files to S3 with parallel multipart parts, per-part retries
    /// and checksums, resuming an interrupted upload on re-run.
    UploadChunked(UploadArgs),
    /// Segment transcripts (SRT, WebVTT, JSON; one per language) into
    /// WebVTT segments and HLS subtitle playlists, once (VOD) or live
    /// while the transcripts grow (--follow).
    Captions(CaptionsArgs),
    /// Speak commentary over a video: fixed-interval MP4 chunks built in
    /// parallel (voice mixed over the ducked original audio), then joined.
    Commentary(CommentaryArgs),
    /// Print facts about a media file or URL as JSON.
    Probe(ProbeArgs),
    /// Delete stale segments, chunks, state and incomplete uploads without
    /// breaking a stream a player is reading (for cron).
    Prune(PruneArgs),
    /// Run a whole publishing pipeline per input (transcode-hls, captions,
    /// commentary, delete the source) from one manifest: each remote input
    /// read once, re-runs skip what is complete.
    Run(RunArgs),
    /// Speech to timed transcripts (SRT, WebVTT, JSON) ready for
    /// `captions`: chunks cut at silences, recognised in parallel, offline
    /// (PocketSphinx through libavfilter) or by any engine as a command.
    Transcribe(TranscribeArgs),
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline manifest (YAML): inputs, output, steps and
    /// delete-source.
    #[arg(value_name = "PIPELINE.yaml")]
    pub manifest: PathBuf,

    /// Take only this machine's share of the inputs: a stable hash of
    /// each input's name (for CI matrices and job arrays), e.g. 2/4; auto
    /// takes K and N from a Slurm, Kubernetes or AWS Batch array task.
    #[arg(long, env = "VIDPIPE_SHARD", value_name = "K/N|auto")]
    pub shard: Option<String>,

    /// Inputs processed at once, the CPU threads divided between them
    /// [default: 1].
    #[arg(long, env = "VIDPIPE_JOBS", value_name = "N")]
    pub jobs: Option<String>,

    /// List per input the steps that would run, resume, or be skipped,
    /// and touch nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also write the final summary (per input: steps, outcomes, output,
    /// seconds) as JSON to this file, e.g. for a CI artifact.
    #[arg(long, env = "VIDPIPE_REPORT", value_name = "FILE")]
    pub report: Option<String>,
}

/// Arguments of `transcribe`.
#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Media with speech: files, directories (searched recursively),
    /// http(s) URLs, s3://bucket/key objects or s3://bucket/prefix/
    /// listings.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Output directory or s3://bucket/prefix (DEST/<stem>.<lang>.srt), or
    /// with one input a file name with an extension (.srt, .vtt, .json).
    #[arg(short, long, env = "VIDPIPE_TRANSCRIBE_OUTPUT", value_name = "DEST")]
    pub output: Option<String>,

    /// Transcript format [default: srt, or DEST's extension].
    #[arg(long, value_enum, env = "VIDPIPE_TRANSCRIBE_FORMAT")]
    pub format: Option<TranscriptFormatArg>,

    /// BCP-47 language of the speech, in the file names [default: en].
    #[arg(long, env = "VIDPIPE_TRANSCRIBE_LANGUAGE", value_name = "TAG")]
    pub language: Option<String>,

    /// Recogniser: libavfilter's asr (PocketSphinx, offline) or a command
    /// (--asr-cmd) [default: libav].
    #[arg(long, value_enum, env = "VIDPIPE_TRANSCRIBE_ENGINE")]
    pub engine: Option<EngineArg>,

    /// PocketSphinx model directory: an acoustic model directory, a
    /// .lm.bin language model and a .dict dictionary
    /// [default: /usr/share/pocketsphinx/model/en-us].
    #[arg(long, env = "VIDPIPE_TRANSCRIBE_MODEL_DIR", value_name = "DIR")]
    pub model_dir: Option<String>,

    /// With --engine command: the program as a template run without a
    /// shell, with {in} (the chunk as 16 kHz mono WAV, chunk-NNNN.wav by
    /// its number) and {out} (where to
    /// write SRT, WebVTT or JSON, told by the extension after {out} or a
    /// format named in the template), e.g. 'whisper-cli -m
    /// ggml-base.en.bin -f {in} -osrt -of {out}'.
    #[arg(long, env = "VIDPIPE_ASR_CMD", value_name = "TEMPLATE")]
    pub asr_cmd: Option<String>,

    /// With --engine command: time limit for one chunk [default: 10m].
    #[arg(long, env = "VIDPIPE_ASR_TIMEOUT", value_name = "DURATION")]
    pub asr_timeout: Option<String>,

    /// Longest chunk; chunks end in pauses [default: 30s].
    #[arg(long, env = "VIDPIPE_TRANSCRIBE_CHUNK", value_name = "DURATION")]
    pub chunk: Option<String>,

    /// Chunks recognised at once [default: the number of cores].
    #[arg(long, env = "VIDPIPE_TRANSCRIBE_JOBS", value_name = "N")]
    pub jobs: Option<String>,

    /// Live: the one INPUT is still growing (a file being written, an HLS
    /// live playlist); append cues to a local transcript as each chunk is
    /// complete, for `captions --follow`, and leave FILE.end beside it
    /// when the input ends.
    #[arg(long)]
    pub follow: bool,

    /// Live: a file that has not grown for this long has ended
    /// [default: 10s].
    #[arg(long, env = "VIDPIPE_TRANSCRIBE_IDLE", value_name = "DURATION")]
    pub idle: Option<String>,
}

/// `transcribe --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TranscriptFormatArg {
    /// SubRip (.srt).
    Srt,
    /// WebVTT (.vtt).
    Vtt,
    /// JSON, [{"start": secs, "end": secs, "text": "..."}] (.json).
    Json,
}

/// `transcribe --engine` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// libavfilter's asr filter (PocketSphinx), in process, offline.
    Libav,
    /// The program given with --asr-cmd, once per chunk.
    Command,
}

/// Arguments of `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Local directories or s3://bucket/prefix to clean up.
    #[arg(required = true, value_name = "DEST")]
    pub dests: Vec<String>,

    /// Age beyond which a file may go, e.g. 10m or 1d; a job or live
    /// playlist that changed within it is in progress.
    #[arg(long, env = "VIDPIPE_PRUNE_OLDER_THAN", value_name = "DURATION")]
    pub older_than: Option<String>,

    /// Print what would be deleted and why; delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete whole published outputs older than --older-than,
    /// master playlist first (and, under a prefix of plain files, the
    /// files older than it).
    #[arg(long)]
    pub expire: bool,

    /// Abort incomplete multipart uploads under each s3:// DEST started
    /// longer ago than --older-than, and forget their journals.
    #[arg(long)]
    pub abort_uploads: bool,

    /// Install a bucket lifecycle rule for each s3:// DEST: abort
    /// incomplete multipart uploads after DAYS (with --expire, also delete
    /// objects after DAYS).
    #[arg(long, env = "VIDPIPE_PRUNE_LIFECYCLE", value_name = "DAYS")]
    pub lifecycle: Option<String>,

    /// Let --expire work on a filesystem root, the home directory or a
    /// whole bucket.
    #[arg(long)]
    pub allow_root: bool,

    /// Also look in this local directory for the state of jobs writing to
    /// an s3:// DEST (the --state-dir those jobs were given), so their work
    /// in progress is recognised and kept.
    #[arg(long, env = "VIDPIPE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<String>,
}

/// Arguments of `captions`.
#[derive(Debug, Args)]
pub struct CaptionsArgs {
    /// Transcripts (.srt, .vtt or .json), one per language, the original
    /// language first. LANG is a BCP-47 tag; without it the language comes
    /// from a NAME.<lang>.srt suffix, else the original is `und`.
    #[arg(required = true, value_name = "[LANG=]FILE")]
    pub tracks: Vec<String>,

    /// Output directory or s3://bucket/prefix (captions.m3u8,
    /// captions-N.vtt, captions-<lang>.m3u8, captions-<lang>-N.vtt).
    #[arg(short, long, value_name = "DEST")]
    pub output: Option<String>,

    /// Segment duration, e.g. 4 or 6s [default: 4s].
    #[arg(
        long,
        env = "VIDPIPE_CAPTIONS_SEGMENT_DURATION",
        value_name = "DURATION"
    )]
    pub segment_duration: Option<String>,

    /// MPEG-TS time (90 kHz) of cue time 0, written in every segment's
    /// X-TIMESTAMP-MAP [default: where transcode-hls output starts: 900000
    /// for MPEG-TS, 0 when --master's renditions are fMP4].
    #[arg(long, env = "VIDPIPE_CAPTIONS_MPEGTS", value_name = "TICKS")]
    pub mpegts_offset: Option<String>,

    /// Make segment URIs absolute under this URL (default: relative).
    #[arg(long, env = "VIDPIPE_CAPTIONS_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// Media duration to cover when the video runs on after the last cue,
    /// e.g. 95.5 or 1h2m.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Add the languages as a SUBTITLES group to this master playlist
    /// (local file or s3://bucket/key); running again changes nothing.
    #[arg(long, value_name = "PATH")]
    pub master: Option<String>,

    /// Live: watch the transcripts as they grow and publish new segments
    /// every --interval, in sliding-window playlists.
    #[arg(long)]
    pub follow: bool,

    /// Live: time between checks of the transcripts [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// Live: segments kept in each playlist [default: 100].
    #[arg(long, value_name = "N")]
    pub window: Option<String>,

    /// Live: keep the state of an s3:// output in this local directory
    /// instead of beside the output in the bucket (for public buckets).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<String>,

    /// Live: the stream is over; publish the rest, end the playlists
    /// (ENDLIST) and exit. Without it a run ends when every transcript has
    /// an end marker FILE.end beside it.
    #[arg(long)]
    pub finish: bool,
}

/// Arguments of `commentary`.
#[derive(Debug, Args)]
pub struct CommentaryArgs {
    /// The video: a file, an http(s) URL or an s3://bucket/key object.
    #[arg(value_name = "VIDEO")]
    pub video: String,

    /// Output directory or s3://bucket/prefix: chunks/chunk_NNNN.mp4,
    /// commentary.mp4 and, with --hls, hls/.
    #[arg(short, long, env = "VIDPIPE_OUTPUT", value_name = "DEST")]
    pub output: Option<String>,

    /// YAML script: a list of lines, each with `at` (seconds or
    /// hh:mm:ss.mmm) and `text` to speak or `audio` (a pre-recorded file).
    #[arg(long, value_name = "FILE")]
    pub script: Option<String>,

    /// Make the lines from events detected in the video: scene cuts, loud
    /// moments and silence.
    #[arg(long)]
    pub auto: bool,

    /// With --auto: a shell command that reads an interval's events as
    /// JSON on stdin and prints the line to speak (e.g. an LLM CLI).
    #[arg(long, value_name = "CMD", env = "VIDPIPE_WRITER")]
    pub writer: Option<String>,

    /// With --auto: print the detected events as JSON and stop.
    #[arg(long)]
    pub events_only: bool,

    /// With --auto: most lines per interval [default: 2].
    #[arg(long, value_name = "N")]
    pub lines_per_interval: Option<String>,

    /// Chunk length, e.g. 30 or 30s (whole frames) [default: 30s].
    #[arg(long, env = "VIDPIPE_INTERVAL", value_name = "DURATION")]
    pub interval: Option<String>,

    /// Time from a line's `at` to the start of its voice [default: 1s].
    #[arg(long, env = "VIDPIPE_VOICE_DELAY", value_name = "DURATION")]
    pub voice_delay: Option<String>,

    /// Level of the original audio while a voice plays: a gain from 0 to 1
    /// (0.2 = 20%, about -14 dB), or `auto` for side-chain compression
    /// keyed by the voice [default: 0.2].
    #[arg(long, env = "VIDPIPE_DUCK", value_name = "GAIN|auto")]
    pub duck: Option<String>,

    /// TTS program as a template with {text} and {out} (the WAV file to
    /// write), e.g. 'piper -m voice.onnx -f {out} -- {text}'
    /// [default: espeak-ng].
    #[arg(long, env = "VIDPIPE_TTS_CMD", value_name = "TEMPLATE")]
    pub tts_cmd: Option<String>,

    /// espeak-ng voice, e.g. en-us (default TTS only).
    #[arg(long, env = "VIDPIPE_VOICE", value_name = "NAME")]
    pub voice: Option<String>,

    /// TTS programs running at once [default: 5].
    #[arg(long, env = "VIDPIPE_TTS_CONCURRENCY", value_name = "N")]
    pub tts_concurrency: Option<String>,

    /// Time limit for one line's TTS (and one --writer run) [default: 30s].
    #[arg(long, env = "VIDPIPE_TTS_TIMEOUT", value_name = "DURATION")]
    pub tts_timeout: Option<String>,

    /// Also keep an HLS EVENT playlist (hls/commentary.m3u8, MPEG-TS
    /// copies of the chunks) that grows as chunks are made.
    #[arg(long)]
    pub hls: bool,

    /// x264 preset, the same for every chunk [default: veryfast].
    #[arg(long, env = "VIDPIPE_PRESET")]
    pub preset: Option<String>,

    /// H.264 bitrate [default: 2000k].
    #[arg(long, env = "VIDPIPE_VIDEO_BITRATE", value_name = "BITRATE")]
    pub video_bitrate: Option<String>,

    /// AAC bitrate [default: 128k].
    #[arg(long, env = "VIDPIPE_AUDIO_BITRATE", value_name = "BITRATE")]
    pub audio_bitrate: Option<String>,

    /// CPU threads to use in total [default: all cores].
    #[arg(long, env = "VIDPIPE_THREADS", value_name = "N")]
    pub threads: Option<String>,

    /// Keep the state of an s3:// output (and each chunk's mixed audio
    /// until the final file exists) in this local directory instead of
    /// beside the output in the bucket (for public buckets); then only
    /// this machine can resume it.
    #[arg(long, env = "VIDPIPE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<String>,
}

/// Arguments of `upload-chunked`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Files or directories, then the destination: s3://bucket/key for
    /// one file, or s3://bucket/prefix/. A directory's files keep their
    /// paths under the directory's name (DIR) or, with a trailing slash
    /// (DIR/), directly under the prefix.
    #[arg(required = true, num_args = 1.., value_name = "SRC... DEST")]
    pub paths: Vec<String>,

    /// Show each upload's journal and the parts the server holds, instead
    /// of uploading.
    #[arg(long, conflicts_with_all = ["abort", "list_incomplete"])]
    pub status: bool,

    /// Abort every unfinished upload the server holds for each file's key
    /// (ListMultipartUploads), with or without a local journal or the
    /// file itself, and forget any journal.
    #[arg(long, conflicts_with = "list_incomplete")]
    pub abort: bool,

    /// List the unfinished multipart uploads under DEST (the only path
    /// given) with their age.
    #[arg(long)]
    pub list_incomplete: bool,

    /// JSON output for --status and --list-incomplete.
    #[arg(long)]
    pub json: bool,

    /// After each upload, print a presigned GET URL valid this long
    /// (e.g. 1h; 7d is the most S3 allows).
    #[arg(long, value_name = "DURATION")]
    pub presign: Option<String>,

    /// Bytes per part, 5MiB to 5GiB; files up to this size go up in one
    /// PUT; grown automatically to stay within 10,000 parts
    /// [default: 8MiB].
    #[arg(long, env = "VIDPIPE_PART_SIZE", value_name = "SIZE")]
    pub part_size: Option<String>,

    /// Parts in flight at once, across all files [default: 8].
    #[arg(long, env = "VIDPIPE_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<String>,

    /// Attempts per part before the file fails [default: 6].
    #[arg(long, env = "VIDPIPE_ATTEMPTS", value_name = "N")]
    pub attempts: Option<String>,

    /// Content-Type of every uploaded file [default: by each file's
    /// extension, application/octet-stream when unknown].
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,

    /// Upload only shard K of N of the files, chosen by a stable hash of
    /// each file's path below its source argument (for CI matrices and
    /// job arrays), e.g. 2/4; auto takes K and N from a Slurm, Kubernetes
    /// or AWS Batch array task.
    #[arg(long, env = "VIDPIPE_SHARD", value_name = "K/N|auto")]
    pub shard: Option<String>,
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, nothing otherwise.
    Auto,
    /// Progress bars on stderr.
    Bars,
    /// NDJSON events on stdout.
    Json,
    /// No progress output.
    None,
}

/// `--segment-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SegmentFormatArg {
    /// MPEG-2 transport stream segments (.ts).
    Ts,
    /// Fragmented MP4 segments (init.mp4 + .m4s).
    Fmp4,
}

/// `--scaling` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScalingArg {
    /// Renditions scaled from a larger rendition where that keeps the
    /// quality of camera footage (less CPU).
    Cascade,
    /// Every rendition scaled from the source: for sharp synthetic
    /// pictures (screen recordings, slides), where a cascade can cost a
    /// small rendition about 0.25 dB PSNR.
    Direct,
}

/// Arguments of `transcode-hls`.
#[derive(Debug, Args)]
pub struct TranscodeArgs {
    /// Video files, directories (searched recursively), http(s) URLs,
    /// s3://bucket/key objects or s3://bucket/prefix/ listings.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Output directory or s3://bucket/prefix; each input gets
    /// DEST/<input-stem>/.
    #[arg(short, long, env = "VIDPIPE_OUTPUT", value_name = "DEST")]
    pub output: Option<String>,

    /// Ladder rungs as SHORT_SIDE:BITRATE pairs
    /// [default: 1080:5000k,720:2800k,480:1400k,360:800k,240:400k].
    #[arg(long, env = "VIDPIPE_LADDER", value_name = "RUNGS")]
    pub ladder: Option<String>,

    /// AAC bitrate of the audio rendition [default: 128k].
    #[arg(long, env = "VIDPIPE_AUDIO_BITRATE", value_name = "BITRATE")]
    pub audio_bitrate: Option<String>,

    /// BCP-47 language of the audio rendition, e.g. en or pt-BR
    /// [default: the source's tag, else und].
    #[arg(long, env = "VIDPIPE_AUDIO_LANGUAGE", value_name = "TAG")]
    pub audio_language: Option<String>,

    /// Target segment duration, e.g. 6 or 4s [default: 6s].
    #[arg(long, env = "VIDPIPE_SEGMENT_DURATION", value_name = "DURATION")]
    pub segment_duration: Option<String>,

    /// Segment container [default: ts].
    #[arg(long, value_enum, env = "VIDPIPE_SEGMENT_FORMAT")]
    pub segment_format: Option<SegmentFormatArg>,

    /// x264 preset, ultrafast to veryslow [default: veryfast].
    #[arg(long, env = "VIDPIPE_PRESET")]
    pub preset: Option<String>,

    /// Highest output frame rate; faster sources are converted [default: 60].
    #[arg(long, env = "VIDPIPE_MAX_FPS", value_name = "FPS")]
    pub max_fps: Option<String>,

    /// How renditions are scaled [default: cascade].
    #[arg(long, value_enum, env = "VIDPIPE_SCALING")]
    pub scaling: Option<ScalingArg>,

    /// CPU threads to use in total [default: all cores].
    #[arg(long, env = "VIDPIPE_THREADS", value_name = "N")]
    pub threads: Option<String>,

    /// Process only shard K of N of the inputs, chosen by a stable hash of
    /// each input's name (for CI matrices and job arrays), e.g. 2/4; auto
    /// takes K and N from a Slurm, Kubernetes or AWS Batch array task.
    #[arg(long, env = "VIDPIPE_SHARD", value_name = "K/N|auto")]
    pub shard: Option<String>,

    /// Keep the checkpoints of an s3:// output in this local directory
    /// instead of beside the output in the bucket (for public buckets);
    /// then only this machine can resume them.
    #[arg(long, env = "VIDPIPE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<String>,

    /// Delete each s3:// input object after its output is complete
    /// (never on failure; local files are never deleted).
    #[arg(long)]
    pub delete_source: bool,
}

/// Arguments of `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// A media file, an http(s) URL or an s3://bucket/key object.
    #[arg(value_name = "INPUT")]
    pub input: String,
}

/// The clap command, for completions, man pages and flag lookups.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
