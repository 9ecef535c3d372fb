//! Audio for speech recognition: decode to 16 kHz mono signed 16-bit PCM,
//! recognise it with libavfilter's `asr` filter (PocketSphinx), write it as
//! a WAV file for an external engine.
//!
//! [`SpeechDecoder`] turns one audio stream into 16 kHz mono samples
//! (`aresample`/`aformat`, surround downmixed), delivered in the order they
//! were decoded so a caller can cut them as they arrive. [`recognise`] runs
//! one `abuffer → asr → abuffersink` graph over some samples and returns
//! the text of every utterance with the sample at which the recogniser
//! closed it (the frame carrying `lavfi.asr.text`).
//!
//! PocketSphinx keeps its log file in a process-wide variable that every
//! new recogniser replaces, closing the old `FILE` — while other
//! recognisers may be writing to it. So creating a graph (which starts a
//! recogniser) takes [`RECOGNISERS`] exclusively, and feeding one (which
//! may log) takes it shared: recognisers run in parallel, but never while
//! one is being set up.

use super::audio::open_decoder;
use super::{ff, AvContext, MediaError, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// Sample rate the recogniser works at.
pub const SPEECH_RATE: u32 = 16_000;

/// Samples per frame fed to the recogniser: 100 ms, the resolution of an
/// utterance's end.
const FRAME: usize = SPEECH_RATE as usize / 10;

/// Digital silence appended after the samples so the recogniser's voice
/// detector closes the last utterance (the filter never flushes one that
/// is still open at the end of its input): its 0.5 s of post-speech
/// silence, and some to spare.
const TRAILING_SILENCE: usize = SPEECH_RATE as usize * 8 / 10;

/// Held exclusively while a recogniser starts, shared while one runs (see
/// the module docs).
static RECOGNISERS: RwLock<()> = RwLock::new(());

/// Decodes one audio stream into 16 kHz mono `i16` samples.
pub struct SpeechDecoder {
    decoder: ff::decoder::Audio,
    graph: Option<ff::filter::Graph>,
    time_base: ff::Rational,
}

impl SpeechDecoder {
    /// A decoder for `stream`.
    pub fn new(stream: &ff::format::stream::Stream) -> Result<Self> {
        let decoder = open_decoder(stream)?;
        Ok(SpeechDecoder {
            decoder,
            graph: None,
            time_base: stream.time_base(),
        })
    }

    /// Decodes one packet; the samples it yields are appended to `out`.
    /// Undecodable packets are skipped, as players do.
    pub fn push(&mut self, packet: &ff::Packet, out: &mut Vec<i16>) -> Result<()> {
        match self.decoder.send_packet(packet) {
            Ok(()) => {}
            Err(ff::Error::InvalidData) => return Ok(()),
            Err(e) => return Err(e).av(|| "decoding audio".into()),
        }
        self.drain_decoder(out)
    }

    /// Flushes decoder and resampler at the end of the input.
    pub fn finish(&mut self, out: &mut Vec<i16>) -> Result<()> {
        let _ = self.decoder.send_eof();
        self.drain_decoder(out)?;
        if let Some(mut src) = self.graph.as_mut().and_then(|g| g.get("in")) {
            src.source()
                .flush()
                .av(|| "flushing the resampler".into())?;
        }
        self.drain_graph(out);
        Ok(())
    }

    fn drain_decoder(&mut self, out: &mut Vec<i16>) -> Result<()> {
        let mut decoded = ff::frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp();
            decoded.set_pts(ts);
            if self.graph.is_none() {
                let args = super::audio::abuffer_args(&decoded, self.time_base);
                let chain =
                    format!("aresample={SPEECH_RATE},aformat=sample_fmts=s16:channel_layouts=mono");
                self.graph = Some(super::filter_graph(
                    "abuffer",
                    &args,
                    "abuffersink",
                    &chain,
                )?);
            }
            if let Some(mut src) = self.graph.as_mut().and_then(|g| g.get("in")) {
                src.source()
                    .add(&decoded)
                    .av(|| "resampling audio".into())?;
            }
            self.drain_graph(out);
        }
        Ok(())
    }

    fn drain_graph(&mut self, out: &mut Vec<i16>) {
        let mut frame = ff::frame::Audio::empty();
        while super::pull_frame(self.graph.as_mut(), &mut frame) {
            out.extend(samples_of(&frame));
        }
    }
}

/// The samples of a packed mono `s16` frame.
fn samples_of(frame: &ff::frame::Audio) -> impl Iterator<Item = i16> + '_ {
    let bytes = frame.data(0);
    let len = (frame.samples() * 2).min(bytes.len());
    bytes[..len]
        .chunks_exact(2)
        .map(|b| i16::from_ne_bytes([b[0], b[1]]))
}

/// A 16 kHz mono `s16` frame holding `samples`, at `pts` (in samples).
fn frame_of(samples: &[i16], pts: i64) -> ff::frame::Audio {
    let mut frame = ff::frame::Audio::new(
        ff::format::Sample::I16(ff::format::sample::Type::Packed),
        samples.len(),
        ff::ChannelLayout::MONO,
    );
    frame.set_rate(SPEECH_RATE);
    frame.set_pts(Some(pts));
    let data = frame.data_mut(0);
    for (dst, s) in data.chunks_exact_mut(2).zip(samples) {
        dst.copy_from_slice(&s.to_ne_bytes());
    }
    frame
}

/// Opens a recording that may still be growing: a file still being
/// written is read on past its current end, waiting up to `idle` for more
/// (libav's `file` protocol with `follow`); an HLS live playlist is
/// reloaded by libav until it ends. Reading stops early once `stop` is
/// set (libav's interrupt callback).
pub fn open_growing(
    input: &str,
    idle: std::time::Duration,
    stop: std::sync::Arc<AtomicBool>,
) -> Result<ff::format::context::Input> {
    super::init();
    let mut options = ff::Dictionary::new();
    options.set("rw_timeout", &idle.as_micros().max(1).to_string());
    let path = if super::is_url(input) {
        options.set("reconnect", "1");
        input.to_string()
    } else {
        options.set("follow", "1");
        format!("file:{input}")
    };
    ff::format::input_with_interrupt_and_dictionary(
        &path,
        move || stop.load(Ordering::SeqCst),
        options,
    )
    .map_err(|e| MediaError::Unsupported(format!("cannot open: {e}")))
}

/// A PocketSphinx model: acoustic model directory, language model and
/// pronunciation dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechModel {
    /// The acoustic model (a directory with `mdef`, `means`, ...).
    pub hmm: PathBuf,
    /// The language model (`.lm.bin`, `.lm` or `.lm.dmp`).
    pub lm: PathBuf,
    /// The pronunciation dictionary (`.dict`).
    pub dict: PathBuf,
}

impl SpeechModel {
    /// Finds the model in `dir`, laid out like Debian's
    /// `pocketsphinx-en-us` (`/usr/share/pocketsphinx/model/en-us`): one
    /// acoustic model directory (holding `mdef`), one language model file
    /// and one `.dict` file.
    pub fn find(dir: &Path) -> std::result::Result<Self, String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the model directory {}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let hmm = paths.iter().find(|p| p.join("mdef").is_file());
        let lm = paths.iter().find(|p| {
            name(p).is_some_and(|n| {
                // en-us-phone.lm.bin is a phonetic model, not words.
                !n.contains("phone")
                    && (n.ends_with(".lm.bin") || n.ends_with(".lm") || n.ends_with(".lm.dmp"))
            })
        });
        let dict = paths
            .iter()
            .find(|p| name(p).is_some_and(|n| n.ends_with(".dict") || n.ends_with(".dic")));
        match (hmm, lm, dict) {
            (Some(hmm), Some(lm), Some(dict)) => Ok(SpeechModel {
                hmm: hmm.clone(),
                lm: lm.clone(),
                dict: dict.clone(),
            }),
            (hmm, lm, dict) => {
                let missing: Vec<&str> = [
                    (hmm.is_none(), "an acoustic model directory (with mdef)"),
                    (lm.is_none(), "a language model (.lm.bin)"),
                    (dict.is_none(), "a dictionary (.dict)"),
                ]
                .iter()
                .filter(|(gone, _)| *gone)
                .map(|(_, what)| *what)
                .collect();
                Err(format!(
                    "{} is not a PocketSphinx model: it has no {}",
                    dir.display(),
                    missing.join(", no ")
                ))
            }
        }
    }

    /// The `asr` filter with this model.
    fn filter(&self) -> String {
        let value = |p: &Path| escape_filter_value(&p.to_string_lossy());
        format!(
            "asr=rate={SPEECH_RATE}:hmm={}:lm={}:dict={}",
            value(&self.hmm),
            value(&self.lm),
            value(&self.dict)
        )
    }
}

/// A path as a filter option value inside a filter graph description:
/// escaped once for the option parser (`:` separates options) and once
/// for the graph parser (`,;[]` separate filters).
fn escape_filter_value(value: &str) -> String {
    let escape = |text: &str, specials: &str| {
        text.chars().fold(String::new(), |mut out, c| {
            if specials.contains(c) {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    escape(&escape(value, "\\':="), "\\':=,;[]")
}

/// An utterance as the recogniser closed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// The sample (from the start of the recognised samples) at which the
    /// recogniser saw the utterance end: a little after the speech itself.
    pub closed_at: usize,
    /// The words, lower case, separated by spaces.
    pub text: String,
}

/// Recognises `samples` (16 kHz mono) with `model` in one new `asr` graph.
/// `None` when `stop` was set before the end.
pub fn recognise(
    model: &SpeechModel,
    samples: &[i16],
    stop: &AtomicBool,
) -> Result<Option<Vec<Recognised>>> {
    let args = format!(
        "time_base=1/{SPEECH_RATE}:sample_rate={SPEECH_RATE}:sample_fmt=s16:channel_layout=mono"
    );
    let mut graph = {
        let _alone = RECOGNISERS.write().unwrap_or_else(|e| e.into_inner());
        super::filter_graph("abuffer", &args, "abuffersink", &model.filter()).map_err(
            |e| match e {
                MediaError::Av { source, .. } => MediaError::Unsupported(format!(
                    "the speech recogniser (libavfilter `asr`) could not start with the model {}: {source}",
                    model.hmm.display()
                )),
                other => other,
            },
        )?
    };
    let silence = vec![0i16; TRAILING_SILENCE];
    let mut found = Vec::new();
    let mut pts = 0usize;
    for block in samples.chunks(FRAME).chain(silence.chunks(FRAME)) {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let _shared = RECOGNISERS.read().unwrap_or_else(|e| e.into_inner());
        if let Some(mut src) = graph.get("in") {
            src.source()
                .add(&frame_of(block, pts as i64))
                .av(|| "recognising speech".into())?;
        }
        pts += block.len();
        collect_utterances(&mut graph, &mut found);
    }
    let _shared = RECOGNISERS.read().unwrap_or_else(|e| e.into_inner());
    if let Some(mut src) = graph.get("in") {
        src.source()
            .flush()
            .av(|| "finishing speech recognition".into())?;
    }
    collect_utterances(&mut graph, &mut found);
    Ok(Some(found))
}

/// Takes the frames the `asr` graph let through, keeping the utterances
/// they carry.
fn collect_utterances(graph: &mut ff::filter::Graph, found: &mut Vec<Recognised>) {
    let mut frame = ff::frame::Audio::empty();
    while super::pull_frame(Some(graph), &mut frame) {
        let text = frame
            .metadata()
            .get("lavfi.asr.text")
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            let end = frame.pts().unwrap_or(0).max(0) as usize + frame.samples();
            found.push(Recognised {
                closed_at: end,
                text,
            });
        }
    }
}

/// Writes `samples` (16 kHz mono) to `path` as a 16-bit PCM WAV file.
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<()> {
    super::init();
    let codec = ff::encoder::find(ff::codec::Id::PCM_S16LE)
        .ok_or_else(|| MediaError::Unsupported("libavcodec has no pcm_s16le encoder".into()))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .av(|| "creating the WAV encoder".into())?;
    enc.set_rate(SPEECH_RATE as i32);
    enc.set_channel_layout(ff::ChannelLayout::MONO);
    enc.set_format(ff::format::Sample::I16(ff::format::sample::Type::Packed));
    enc.set_time_base(ff::Rational(1, SPEECH_RATE as i32));
    let mut enc = enc.open().av(|| "opening the WAV encoder".into())?;
    let time_base = ff::Rational(1, SPEECH_RATE as i32);
    let mut mux = super::filemux::FileMuxer::create(path, "wav")?;
    let stream = mux.add_encoder(&enc, time_base)?;
    mux.start(&[])?;
    let drain = |enc: &mut ff::encoder::audio::Encoder,
                 mux: &mut super::filemux::FileMuxer|
     -> Result<()> {
        let mut packet = ff::Packet::empty();
        while enc.receive_packet(&mut packet).is_ok() {
            mux.write(stream, std::mem::replace(&mut packet, ff::Packet::empty()))?;
        }
        Ok(())
    };
    for (i, block) in samples.chunks(FRAME).enumerate() {
        enc.send_frame(&frame_of(block, (i * FRAME) as i64))
            .av(|| format!("writing {}", path.display()))?;
        drain(&mut enc, &mut mux)?;
    }
    enc.send_eof()
        .av(|| format!("finishing {}", path.display()))?;
    drain(&mut enc, &mut mux)?;
    mux.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_survive_both_parsers() {
        assert_eq!(escape_filter_value("/usr/share/m"), "/usr/share/m");
        assert_eq!(escape_filter_value("a:b"), "a\\\\\\:b");
        assert_eq!(escape_filter_value("a,b"), "a\\,b");
    }

    #[test]
    fn a_directory_without_a_model_says_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("words.dict"), "a AH\n").expect("write");
        let err = SpeechModel::find(dir.path()).expect_err("no model");
        assert!(err.contains("acoustic model"), "{err}");
        assert!(err.contains("language model"), "{err}");
        assert!(!err.contains("dictionary"), "{err}");
    }

    #[test]
    fn a_wav_file_reads_back_sample_for_sample() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wav");
        let samples: Vec<i16> = (0..20_000)
            .map(|i| ((i * 37) % 2000 - 1000) as i16)
            .collect();
        write_wav(&path, &samples).expect("writes");
        let mut input = super::super::open_input(&path.to_string_lossy()).expect("opens");
        let stream = input
            .streams()
            .best(ff::media::Type::Audio)
            .expect("audio stream");
        let index = stream.index();
        let mut decoder = SpeechDecoder::new(&stream).expect("decoder");
        let mut back = Vec::new();
        for (s, packet) in input.packets() {
            if s.index() == index {
                decoder.push(&packet, &mut back).expect("decodes");
            }
        }
        decoder.finish(&mut back).expect("flushes");
        assert_eq!(back, samples);
    }
}
