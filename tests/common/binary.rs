//! The vidpipe binary under test: starting it with a clean environment,
//! running commands, interrupting them at a given point, and reading its
//! NDJSON events.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

/// The vidpipe binary under test.
pub fn vidpipe() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidpipe"));
    // Keep the environment of the developer's shell out of the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("VIDPIPE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs a command and returns its output, panicking if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Asserts that a command succeeded, showing its output when it did not.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// NDJSON events from stdout.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Runs `cmd` (with `--progress json`) and sends it SIGINT, as Ctrl-C
/// would, once a line of its stdout contains `needle`; returns what it
/// printed after that and how it ended.
pub fn interrupt_when(mut cmd: Command, needle: &str) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        if line.expect("read stdout").contains(needle) {
            let sent = run(Command::new("kill").args(["-INT", &child.id().to_string()]));
            assert!(sent.status.success(), "kill -INT failed");
            break;
        }
    }
    child.wait_with_output().expect("wait")
}
