//! External programs the user names: a template turned into a command
//! without a shell ([`CommandTemplate`]), run with a time limit in its own
//! process group so that a program that hangs is killed together with
//! whatever it started ([`run_bounded`]).
//!
//! One home for both, because every engine vidpipe plugs in as a command
//! (commentary's TTS and `--writer`, transcribe's `--asr-cmd`) needs the
//! same guarantees: no shell re-parsing the text, no stray processes after
//! a timeout or Ctrl-C.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

/// Any program, from a template such as `piper --output_file {out} {text}`
/// (split like a shell would, without running one; placeholders are
/// replaced inside each word, so the values are never re-parsed).
#[derive(Debug, Clone)]
pub struct CommandTemplate {
    words: Vec<String>,
}

impl CommandTemplate {
    /// Parses and checks a template: it must name a program and contain
    /// `{out}`, the file the program writes.
    pub fn parse(template: &str) -> Result<Self, String> {
        let words =
            shlex::split(template).ok_or_else(|| format!("`{template}`: unbalanced quotes"))?;
        if words.is_empty() {
            return Err("the command is empty".into());
        }
        if !words.iter().any(|w| w.contains("{out}")) {
            return Err(format!(
                "`{template}` has no {{out}} placeholder for the file to write"
            ));
        }
        Ok(CommandTemplate { words })
    }

    /// Whether `placeholder` (e.g. `{in}`) appears in the template.
    pub fn mentions(&self, placeholder: &str) -> bool {
        self.words.iter().any(|w| w.contains(placeholder))
    }

    /// The words after `{out}` is replaced, for telling what `{out}` will
    /// be from the extension written after it (`-of {out}.srt`).
    pub fn out_word(&self) -> Option<&str> {
        self.words
            .iter()
            .find(|w| w.contains("{out}"))
            .map(String::as_str)
    }

    /// The command with every `(placeholder, value)` replaced inside each
    /// word, in order.
    pub fn fill(&self, values: &[(&str, &str)]) -> Command {
        let mut words = self.words.iter().map(|w| {
            values
                .iter()
                .fold(w.clone(), |word, (key, value)| word.replace(key, value))
        });
        let mut cmd = Command::new(words.next().unwrap_or_default());
        cmd.args(words);
        cmd
    }
}

/// How an external program failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// It could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran longer than allowed and was killed.
    #[error("`{program}` did not finish within {secs:.0} s and was stopped")]
    Timeout {
        /// The program.
        program: String,
        /// The limit.
        secs: f64,
    },
    /// The run is being stopped (Ctrl-C), so the program was too.
    #[error("`{program}` was stopped because the run is stopping")]
    Stopped {
        /// The program.
        program: String,
    },
    /// It exited with an error.
    #[error("`{program}` failed ({status}){detail}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// `: ` and the last line it wrote on stderr, if any.
        detail: String,
    },
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Captured {
    /// Its standard output.
    pub stdout: Vec<u8>,
}

/// Runs `cmd` with `input` on stdin, capturing stdout and stderr, killing
/// its process group after `timeout`, or as soon as `stop` is set.
pub fn run_bounded(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Captured, ProcessError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            // A program that does not read its input is not an error here.
            let _ = stdin.write_all(&bytes);
        });
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = wait_bounded(&mut child, &program, timeout, stop)?;
    // The group may have left children holding the pipes open.
    kill_group(child.id());
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(ProcessError::Failed {
            program,
            status,
            detail: last_line(&stderr),
        });
    }
    Ok(Captured { stdout })
}

/// Waits for `child` until `timeout` or until `stop` is set; then kills
/// its process group.
fn wait_bounded(
    child: &mut Child,
    program: &str,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<ExitStatus, ProcessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let waited = child.wait_timeout(left.min(Duration::from_millis(100)));
        let stopped = stop.load(Ordering::SeqCst);
        match waited {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if !stopped && !left.is_zero() => continue,
            Ok(None) | Err(_) => {
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let program = program.to_string();
                return Err(if stopped {
                    ProcessError::Stopped { program }
                } else {
                    ProcessError::Timeout {
                        program,
                        secs: timeout.as_secs_f64(),
                    }
                });
            }
        }
    }
}

/// `: ` and the last non-empty line of `stderr`, or nothing.
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| format!(": {l}"))
        .unwrap_or_default()
}

/// Sends SIGKILL to the process group led by `pid` (the child we started
/// with `process_group(0)`).
fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals that process group
        // only; the group is the one our child leads.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_STOP: AtomicBool = AtomicBool::new(false);

    #[test]
    fn template_needs_a_program_and_out() {
        assert!(CommandTemplate::parse("say {text}").is_err());
        assert!(CommandTemplate::parse("").is_err());
        assert!(CommandTemplate::parse("say 'unbalanced").is_err());
    }

    #[test]
    fn template_substitutes_inside_words_without_a_shell() {
        let t = CommandTemplate::parse("asr -f {in} -of '{out}.srt'").expect("valid");
        let cmd = t.fill(&[("{in}", "/tmp/a b.wav"), ("{out}", "/tmp/x; rm -rf /")]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "asr");
        assert_eq!(
            args,
            vec!["-f", "/tmp/a b.wav", "-of", "/tmp/x; rm -rf /.srt"]
        );
        assert!(t.mentions("{in}"));
        assert_eq!(t.out_word(), Some("{out}.srt"));
    }

    #[test]
    fn stop_ends_a_program_early() {
        let stop = AtomicBool::new(true);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30"]);
        let err = run_bounded(cmd, None, Duration::from_secs(60), &stop).expect_err("stopped");
        assert!(matches!(err, ProcessError::Stopped { .. }), "{err}");
    }

    #[test]
    fn captures_output_and_passes_input() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "tr a-z A-Z"]);
        let out = run_bounded(
            cmd,
            Some(b"hello".to_vec()),
            Duration::from_secs(10),
            &NO_STOP,
        )
        .expect("runs");
        assert_eq!(out.stdout, b"HELLO");
    }

    #[test]
    fn a_hanging_program_is_stopped() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30"]);
        let err =
            run_bounded(cmd, None, Duration::from_millis(200), &NO_STOP).expect_err("timeout");
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    }

    #[test]
    fn failure_carries_the_last_stderr_line() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo first >&2; echo 'voice not found' >&2; exit 3"]);
        let err = run_bounded(cmd, None, Duration::from_secs(10), &NO_STOP).expect_err("fails");
        let msg = err.to_string();
        assert!(msg.contains("voice not found"), "{msg}");
    }
}
