//! transcode-hls into a bucket whose server goes away mid-run: a server
//! that comes back costs a pause, not the run; one that never does fails
//! the input after the retry budget (`--retry-for`), naming the attempts
//! made, with the checkpoint kept for a re-run.

mod common;

use common::garage::Garage;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A small rendition ladder for a 640x360 source, so the runs stay short.
const LADDER: &str = "360:600k,240:300k";

/// What the 640x360 test clip becomes with [`LADDER`].
fn expected(seconds: u64) -> Expect {
    Expect {
        sizes: vec![(640, 360), (426, 240)],
        audio: true,
        frames: seconds * 25,
        fps: 25.0,
    }
}

/// transcode-hls of `clip` into `dest`, with JSON progress on stdout, debug
/// logs on stderr and bucket checkpoints under `state`.
fn transcode(garage: &Garage, clip: &Path, dest: &str, state: &Path) -> Command {
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state)
        .arg("transcode-hls")
        .arg(clip)
        .args(["-o", dest, "--ladder", LADDER])
        .args(["--preset", "medium", "--threads", "1"])
        .args(["--segment-duration", "1", "--progress", "json", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running vidpipe whose stdout and stderr are read on threads, so it
/// never blocks on a full pipe.
struct Running {
    child: Child,
    first_segment: mpsc::Receiver<()>,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("spawn vidpipe");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, first_segment) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(out).lines() {
                let line = line.expect("stdout line");
                let event: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
                if event["event"] == "segment_written" {
                    let _ = tx.send(());
                }
                all.extend_from_slice(line.as_bytes());
                all.push(b'\n');
            }
            all
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running {
            child,
            first_segment,
            stdout,
            stderr,
        }
    }

    /// Blocks until the first `segment_written` event.
    fn wait_first_segment(&self) {
        self.first_segment
            .recv()
            .expect("the run ended before writing a segment");
    }

    /// Asserts the run is still going (it cannot end while the server is
    /// down, so a run that has ended finished before the server went away).
    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "the run ended before the server went down"
        );
    }

    /// Waits for the exit; its code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<u8>, String) {
        let status = self.child.wait().expect("wait for vidpipe");
        let stdout = self.stdout.join().expect("stdout thread");
        let stderr = self.stderr.join().expect("stderr thread");
        (status.code(), stdout, stderr)
    }
}

#[test]
fn transcode_to_a_bucket_survives_a_server_restart() {
    let mut garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "restart.mp4", &ClipSpec::new(640, 360, 12.0));
    let dest = format!("s3://{}/vod", garage.bucket);
    let mut run = Running::spawn(transcode(&garage, &clip, &dest, &tmp.path().join("state")));

    run.wait_first_segment();
    garage.kill();
    run.assert_running();
    // The outage the run must ride out.
    std::thread::sleep(Duration::from_secs(20));
    garage.restart();

    let (code, stdout, stderr) = run.finish();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("retrying"),
        "no request was retried while the server was down: {stderr}"
    );
    assert!(
        events(&stdout).iter().all(|e| e["event"] != "resume"),
        "the run went on, it did not start again"
    );
    let local = tempfile::tempdir().expect("tempdir");
    garage.download("vod/restart/", local.path());
    check_package(local.path(), &expected(12));
}

#[test]
fn transcode_to_a_bucket_fails_when_the_server_never_returns() {
    let mut garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let clip = make_clip(tmp.path(), "gone.mp4", &ClipSpec::new(640, 360, 12.0));
    let dest = format!("s3://{}/vod", garage.bucket);
    let mut cmd = transcode(&garage, &clip, &dest, &state);
    cmd.env("VIDPIPE_RETRY_FOR", "5s");
    let mut run = Running::spawn(cmd);

    run.wait_first_segment();
    garage.kill();
    run.assert_running();

    let (code, _, stderr) = run.finish();
    assert_eq!(code, Some(1), "{stderr}");
    let attempts = stderr
        .lines()
        .filter(|l| !l.contains("DEBUG"))
        .find_map(|l| {
            let (_, rest) = l.split_once("(after ")?;
            rest.split_once(" attempts)")?.0.parse::<u32>().ok()
        })
        .unwrap_or_else(|| panic!("the error names no attempt count: {stderr}"));
    assert!(attempts > 1, "gave up without retrying: {stderr}");
    // The checkpoint stored beside the output before the server went away
    // is still there for a re-run, on this machine or another.
    garage.restart();
    let kept = garage.keys("vod/gone/.vidpipe/");
    assert!(
        kept.contains(&"vod/gone/.vidpipe/checkpoint.json".to_string()),
        "no checkpoint in {kept:?}: {stderr}"
    );
}
