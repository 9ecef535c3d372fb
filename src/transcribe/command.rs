//! Any speech recogniser as a command (`--asr-cmd`).
//!
//! Each chunk is written as a 16 kHz mono WAV file (`{in}`), the program
//! is run without a shell ([`crate::process`]: its own process group,
//! killed on timeout or when the run stops) and asked to write a
//! transcript to `{out}`. The transcript's format comes from the
//! template: the extension written after `{out}` (`-o {out}.vtt`), or else
//! a format named in another word (whisper.cpp's `-osrt -of {out}`, which
//! writes `{out}.srt` itself). Its cues are read with the captions parser
//! and shifted to the chunk's place.

use super::cues::TimedText;
use super::ChunkOutcome;
use crate::captions::parse::{parse, Completeness, Format};
use crate::media::speech::write_wav;
use crate::process::{run_bounded, CommandTemplate};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// An external recogniser.
#[derive(Debug, Clone)]
pub struct CommandEngine {
    template: CommandTemplate,
    format: Format,
    /// What follows `{out}` in the name of the file the program writes:
    /// the template's own extension, or the one the program adds.
    suffix: String,
    timeout: Duration,
}

impl CommandEngine {
    /// Checks `template` (it needs `{in}` and `{out}` and a transcript
    /// format) and keeps `timeout`, the limit for one chunk.
    pub fn new(template: &str, timeout: Duration) -> Result<Self, String> {
        let parsed = CommandTemplate::parse(template)?;
        if !parsed.mentions("{in}") {
            return Err(format!(
                "`{template}` has no {{in}} placeholder for the chunk's WAV file"
            ));
        }
        let out_word = parsed.out_word().unwrap_or("{out}");
        let after = out_word.rsplit("{out}").next().unwrap_or("");
        let named_file = format!("out{after}");
        let (format, suffix) = match Format::of(Path::new(&named_file)) {
            Ok(format) if after.starts_with('.') => (format, after.to_string()),
            _ => {
                let named = named_format(template).ok_or_else(|| {
                    format!(
                        "`{template}`: cannot tell which transcript format the program writes; \
                         put the extension after {{out}} ({{out}}.srt, {{out}}.vtt or {{out}}.json)"
                    )
                })?;
                (named.0, format!(".{}", named.1))
            }
        };
        Ok(CommandEngine {
            template: parsed,
            format,
            suffix,
            timeout,
        })
    }

    /// The transcript format the program writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Recognises `samples`, chunk `index` of the recording, starting at
    /// `offset_ms`, with files in `dir` (`chunk-0001.wav` for chunk 1).
    pub fn chunk(
        &self,
        dir: &Path,
        index: usize,
        samples: &[i16],
        offset_ms: u64,
        stop: &AtomicBool,
    ) -> ChunkOutcome {
        let wav = dir.join(format!("chunk-{index:04}.wav"));
        let out = dir.join(format!("chunk-{index:04}-out"));
        let result = self.recognise(&wav, &out, samples, stop);
        for file in [wav.clone(), out.clone(), self.written(&out)] {
            let _ = std::fs::remove_file(file);
        }
        match result {
            Ok(cues) => ChunkOutcome::Cues(
                cues.into_iter()
                    .map(|c| TimedText {
                        start: c.start + offset_ms,
                        end: c.end + offset_ms,
                        text: c.text,
                    })
                    .collect(),
            ),
            Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => ChunkOutcome::Stopped,
            Err(reason) => ChunkOutcome::Failed(reason),
        }
    }

    fn recognise(
        &self,
        wav: &Path,
        out: &Path,
        samples: &[i16],
        stop: &AtomicBool,
    ) -> Result<Vec<TimedText>, String> {
        write_wav(wav, samples).map_err(|e| e.to_string())?;
        let command = self.template.fill(&[
            ("{in}", &wav.to_string_lossy()),
            ("{out}", &out.to_string_lossy()),
        ]);
        run_bounded(command, None, self.timeout, stop).map_err(|e| e.to_string())?;
        let written = [self.written(out), out.to_path_buf()]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| "the program wrote no transcript".to_string())?;
        let bytes = std::fs::read(&written).map_err(|e| format!("{}: {e}", written.display()))?;
        if String::from_utf8_lossy(&bytes).trim().is_empty() {
            return Ok(Vec::new());
        }
        let transcript = parse(&bytes, self.format, Completeness::Complete)
            .map_err(|p| format!("its transcript is unreadable: {p}"))?;
        Ok(transcript
            .cues
            .into_iter()
            .map(|c| TimedText {
                start: c.start,
                end: c.end,
                text: plain(&c.text),
            })
            .collect())
    }

    /// The file the program writes when `{out}` is `out`.
    fn written(&self, out: &Path) -> PathBuf {
        let mut name = out.as_os_str().to_owned();
        name.push(&self.suffix);
        PathBuf::from(name)
    }
}

/// WebVTT cue text as plain text.
fn plain(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A transcript format named in a template's words (`-osrt`,
/// `--output-format vtt`): the last one named.
fn named_format(template: &str) -> Option<(Format, &'static str)> {
    let lower = template.to_ascii_lowercase();
    [
        (Format::Srt, "srt"),
        (Format::Vtt, "vtt"),
        (Format::Json, "json"),
    ]
    .into_iter()
    .filter_map(|(f, ext)| lower.rfind(ext).map(|at| (at, (f, ext))))
    .max_by_key(|(at, _)| *at)
    .map(|(_, found)| found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(template: &str) -> Result<(Format, String), String> {
        CommandEngine::new(template, Duration::from_secs(1)).map(|e| (e.format, e.suffix))
    }

    #[test]
    fn the_format_comes_from_the_extension_after_out() {
        assert_eq!(
            format_of("asr {in} -o {out}.vtt"),
            Ok((Format::Vtt, ".vtt".into()))
        );
        assert_eq!(
            format_of("whisper-cli -m m.bin -f {in} -osrt -of {out}"),
            Ok((Format::Srt, ".srt".into()))
        );
        assert!(format_of("asr {in} {out}").is_err());
        assert!(format_of("asr {out}.srt").is_err());
    }
}
