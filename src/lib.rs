//! vidpipe's engine: everything that publishes video, with no knowledge of
//! command lines, terminals or progress bars.
//!
//! The CLI (`src/main.rs`, `src/cli/`) turns flags, environment and the YAML
//! config file into validated settings and hands them to the jobs here:
//! [`hls`] for adaptive-bitrate HLS, [`upload`] for resumable multipart
//! uploads, [`captions`] for segmented WebVTT subtitles, [`commentary`] for
//! voice commentary over video chunks, [`transcribe`] for speech to timed
//! transcripts. Jobs are built on shared parts:
//! [`media`] (libav through `ffmpeg-next`: probe, decode, scale, encode, mux),
//! [`progress`] (typed events behind one reporter trait), [`inputs`]
//! (expanding paths, directories and URLs into a batch), [`state`] (where
//! checkpoints and journals live, how they are loaded and saved) and
//! [`fsutil`] (atomic writes) and [`process`] (external programs as
//! engines, bounded in time).

pub mod captions;
pub mod commentary;
pub mod config;
pub mod cpu;
pub mod fingerprint;
pub mod fsutil;
pub mod hls;
pub mod inputs;
pub mod language;
pub mod media;
pub mod pipeline;
pub mod process;
pub mod progress;
pub mod prune;
pub mod state;
pub mod storage;
pub mod transcribe;
pub mod units;
pub mod upload;

/// Set when the user asks the process to stop (Ctrl-C, SIGTERM).
///
/// Long jobs poll it between units of work (frames, segments) and stop
/// cleanly: checkpoints stay, temp files go.
pub type CancelFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;
