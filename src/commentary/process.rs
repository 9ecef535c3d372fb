//! Running an external program (a TTS engine, a `--writer`) with a time
//! limit: its own process group, so a program that hangs is killed together
//! with whatever it started.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wait_timeout::ChildExt;

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
