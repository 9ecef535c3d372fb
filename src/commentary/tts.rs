//! Text to speech behind one small trait.
//!
//! A [`SpeechBackend`] only says which program to run to turn a text into
//! an audio file; [`synthesize`] runs it with a time limit and checks that
//! it produced something. The default is the local `espeak-ng`; any other
//! engine plugs in as a command template with `{text}` and `{out}`.

pub use crate::process::CommandTemplate;
use crate::process::{run_bounded, ProcessError};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A TTS engine: how to make `out` (a WAV file) say `text`.
pub trait SpeechBackend: Send + Sync {
    /// The command that writes the speech for `text` to `out`.
    fn command(&self, text: &str, out: &Path) -> Command;
}

/// `espeak-ng -w OUT -- TEXT`, optionally with a voice.
#[derive(Debug, Clone, Default)]
pub struct Espeak {
    /// `-v` voice name, e.g. `en-us`.
    pub voice: Option<String>,
}

impl SpeechBackend for Espeak {
    fn command(&self, text: &str, out: &Path) -> Command {
        let mut cmd = Command::new("espeak-ng");
        cmd.arg("-w").arg(out);
        if let Some(v) = &self.voice {
            cmd.args(["-v", v]);
        }
        cmd.arg("--").arg(text);
        cmd
    }
}

impl Espeak {
    /// Checks that espeak-ng knows `voice`, by speaking nothing with it
    /// (espeak-ng exits non-zero for an unknown voice). When espeak-ng
    /// cannot be started the check passes: each line then reports that
    /// itself, as without a voice.
    pub fn check_voice(voice: &str) -> Result<(), String> {
        let output = Command::new("espeak-ng")
            .args(["-q", "-v", voice, "--", ""])
            .stdin(std::process::Stdio::null())
            .output();
        match output {
            Ok(o) if !o.status.success() => {
                let said = String::from_utf8_lossy(&o.stderr);
                let said = said.trim().trim_start_matches("Error:").trim();
                let said = if said.is_empty() {
                    String::new()
                } else {
                    format!(" ({said})")
                };
                Err(format!(
                    "espeak-ng has no voice `{voice}`{said}; `espeak-ng --voices` lists them"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Any program as a TTS engine: `{text}` is the line, `{out}` the WAV
/// file to write.
impl SpeechBackend for CommandTemplate {
    fn command(&self, text: &str, out: &Path) -> Command {
        self.fill(&[("{out}", &out.to_string_lossy()), ("{text}", text)])
    }
}

/// Why a line has no voice.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The program failed, hung or could not start.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// It exited cleanly without writing audio.
    #[error("the TTS program wrote no audio to {0}")]
    NoOutput(String),
}

/// Runs `backend` for `text` into `out`, stopping it after `timeout` (or
/// when `stop` is set).
pub fn synthesize(
    backend: &dyn SpeechBackend,
    text: &str,
    out: &Path,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(), TtsError> {
    let _ = std::fs::remove_file(out);
    run_bounded(backend.command(text, out), None, timeout, stop)?;
    match std::fs::metadata(out) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(TtsError::NoOutput(out.display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_substitutes_inside_words_without_a_shell() {
        let t = CommandTemplate::parse("tts --text={text} -o '{out}'").expect("valid");
        let cmd = t.command("it's $HOME; rm -rf /", Path::new("/tmp/a b.wav"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "tts");
        assert_eq!(
            args,
            vec!["--text=it's $HOME; rm -rf /", "-o", "/tmp/a b.wav"]
        );
    }

    #[test]
    fn a_program_that_writes_nothing_is_a_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = CommandTemplate::parse("true {out}").expect("valid");
        let err = synthesize(
            &t,
            "hi",
            &dir.path().join("x.wav"),
            Duration::from_secs(5),
            &AtomicBool::new(false),
        )
        .expect_err("no output");
        assert!(matches!(err, TtsError::NoOutput(_)), "{err}");
    }
}
