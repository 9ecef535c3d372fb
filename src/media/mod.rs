//! libav, through `ffmpeg-next`: everything vidpipe does with media.
//!
//! Jobs never call `ffmpeg-next` directly; they use these pieces:
//! [`probe`] (facts about an input), [`video`] (decode once, orient, scale,
//! H.264 encode), [`audio`] (decode, downmix, AAC encode), [`pcm`] (exact
//! sample ranges, multi-input audio graphs, AAC from PCM), [`mux`]
//! (segment formats, segment muxers writing to memory), [`filemux`] (whole
//! MP4/TS files), [`speech`] (16 kHz mono for speech recognition, the
//! `asr` filter, WAV for external engines) and [`thumbnail`] (one JPEG); [`video`] also plans frame
//! rates and x264 threads for every job. [`remote`] tells whether an
//! http(s) input can be streamed, and copies it locally when it cannot.
//! Scalers and filter graphs are created inside the thread that uses them.

pub mod audio;
pub mod codecs;
pub mod filemux;
pub mod mux;
pub mod pcm;
pub mod probe;
pub mod remote;
pub mod speech;
pub mod thumbnail;
pub mod video;

pub use ffmpeg_next as ff;

use std::sync::Once;

/// What went wrong inside libav, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// libav refused an operation.
    #[error("{what}: {source}")]
    Av {
        /// The operation, in words a user understands.
        what: String,
        /// libav's error.
        #[source]
        source: ff::Error,
    },
    /// The input is not something vidpipe can publish.
    #[error("{0}")]
    Unsupported(String),
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation and path.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for media operations.
pub type Result<T> = std::result::Result<T, MediaError>;

/// Attaches a description to a libav error.
pub trait AvContext<T> {
    /// Wraps the error with `what` (evaluated only on failure).
    fn av(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> AvContext<T> for std::result::Result<T, ff::Error> {
    fn av(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| MediaError::Av {
            what: what(),
            source,
        })
    }
}

/// Initialises libav once per process and keeps its own logging quiet
/// (vidpipe reports problems itself, naming the file).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registration cannot fail with the libraries Debian ships; if it
        // did, the first open would report the problem with a file name.
        let _ = ff::init();
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// Whether `input` names a network resource libav should open itself.
pub fn is_url(input: &str) -> bool {
    input.starts_with("http://") || input.starts_with("https://")
}

/// Opens an input for demuxing, with a network timeout for URLs.
pub fn open_input(input: &str) -> Result<ff::format::context::Input> {
    init();
    if !is_url(input) && std::fs::metadata(input).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(MediaError::Unsupported("the file is empty".into()));
    }
    let mut options = ff::Dictionary::new();
    if is_url(input) {
        // Microseconds: give up on a dead server instead of hanging a batch.
        options.set("rw_timeout", "30000000");
        options.set("reconnect", "1");
    }
    ff::format::input_with_dictionary(input, options).map_err(|source| {
        let reason = match source {
            ff::Error::InvalidData => {
                "not a media file libav can read (unknown format or corrupt data)".to_string()
            }
            other => other.to_string(),
        };
        MediaError::Unsupported(format!("cannot open: {reason}"))
    })
}

/// Builds `source(args) -> chain -> sink` as a configured filter graph, with
/// the source named `in` and the sink `out`.
pub fn filter_graph(
    source: &str,
    args: &str,
    sink: &str,
    chain: &str,
) -> Result<ff::filter::Graph> {
    let find = |name: &str| {
        ff::filter::find(name)
            .ok_or_else(|| MediaError::Unsupported(format!("libavfilter has no `{name}` filter")))
    };
    let mut graph = ff::filter::Graph::new();
    graph
        .add(&find(source)?, "in", args)
        .av(|| format!("creating the filter source {source} ({args})"))?;
    graph
        .add(&find(sink)?, "out", "")
        .av(|| format!("creating the filter sink {sink}"))?;
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(chain))
        .av(|| format!("building the filter `{chain}`"))?;
    graph
        .validate()
        .av(|| format!("configuring the filter `{chain}`"))?;
    Ok(graph)
}

/// Takes the next filtered frame from the `out` sink of a graph built by
/// [`filter_graph`] into `frame`; `false` when none is ready yet, the graph
/// has ended, or there is no graph.
pub fn pull_frame(graph: Option<&mut ff::filter::Graph>, frame: &mut ff::Frame) -> bool {
    match graph.and_then(|g| g.get("out")) {
        Some(mut sink) => sink.sink().frame(frame).is_ok(),
        None => false,
    }
}

/// Converts a libav rational to f64, treating 0/0 as 0.
pub fn rational_f64(r: ff::Rational) -> f64 {
    if r.denominator() == 0 {
        0.0
    } else {
        f64::from(r.numerator()) / f64::from(r.denominator())
    }
}
