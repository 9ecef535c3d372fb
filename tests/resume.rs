//! Crash safety: kill -9 mid-encode and re-run, Ctrl-C mid-encode, and a
//! re-run after some renditions finished. Synchronisation is on the JSON
//! events the binary prints, never on sleeps.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Slow enough settings that the run is still encoding when we act.
const SLOW: &[&str] = &[
    "--preset",
    "medium",
    "--segment-duration",
    "1",
    "--threads",
    "1",
    "--progress",
    "json",
    "-q",
];

fn spawn(clip: &Path, out: &Path) -> Child {
    vidpipe()
        .arg("transcode-hls")
        .arg(clip)
        .arg("-o")
        .arg(out)
        .args(SLOW)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vidpipe")
}

/// Reads events until one matches; returns all events read.
fn read_until(
    child: &mut Child,
    mut stop: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let event: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        let done = stop(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("vidpipe ended before the awaited event; saw {seen:?}");
}

/// Starts an encode of a fresh 10 s clip and returns once segment `n` of
/// some rendition is written (the run is then still encoding).
fn encoding_past_segment(name: &str, n: u64) -> (tempfile::TempDir, PathBuf, PathBuf, Child) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), name, &ClipSpec::new(854, 480, 10.0));
    let out = tmp.path().join("out");
    let mut child = spawn(&clip, &out);
    read_until(&mut child, |e| {
        e["event"] == "segment_written" && e["index"].as_u64() >= Some(n)
    });
    (tmp, clip, out, child)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("mtime")
}

fn rerun(clip: &Path, out: &Path) -> Vec<serde_json::Value> {
    let o = run(vidpipe()
        .arg("transcode-hls")
        .arg(clip)
        .arg("-o")
        .arg(out)
        .args(SLOW));
    assert!(
        o.status.success(),
        "re-run failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    events(&o.stdout)
}

#[test]
fn kill_during_encoding_then_rerun_resumes_from_a_segment_boundary() {
    let (_tmp, clip, out, mut child) = encoding_past_segment("crash.mp4", 3);
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "vidpipe finished before it was killed");
    let root = out.join("crash");
    assert!(
        !root.join("master.m3u8").exists(),
        "master playlist after a crash"
    );
    assert!(root.join(".vidpipe/checkpoint.json").exists());
    let early = root.join("240p/seg_00000.ts");
    let early_mtime = mtime(&early);

    let ev = rerun(&clip, &out);
    let resume = ev
        .iter()
        .find(|e| e["event"] == "resume")
        .expect("a resume event");
    let from = resume["from_segment"].as_u64().expect("from_segment");
    assert!(from >= 1, "resumed from {from}");
    let rewritten: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "segment_written")
        .map(|e| e["index"].as_u64().expect("index"))
        .collect();
    assert!(
        rewritten.iter().all(|&i| i >= from),
        "segments before the resume point were re-encoded: {rewritten:?}"
    );
    assert_eq!(mtime(&early), early_mtime, "segment 0 was rewritten");
    check_package(&root, &Expect::sd_clip(10));
    assert!(files_under(&root)
        .iter()
        .all(|p| !p.to_string_lossy().ends_with(".part")));
}

#[test]
fn finished_renditions_are_not_encoded_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "partial.mp4", &ClipSpec::new(640, 360, 4.0));
    let out = tmp.path().join("out");
    let o = run(vidpipe()
        .arg("transcode-hls")
        .arg(&clip)
        .arg("-o")
        .arg(&out)
        .args(SLOW));
    assert!(o.status.success());
    let root = out.join("partial");
    // Put the output back into the state of a crash after 360p and audio
    // finished while 240p had written two segments.
    std::fs::remove_file(root.join("master.m3u8")).expect("rm master");
    std::fs::remove_file(root.join("240p/index.m3u8")).expect("rm playlist");
    let cp_path = root.join(".vidpipe/checkpoint.json");
    let mut cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cp_path).expect("read")).expect("json");
    let state = &mut cp["renditions"]["240p"];
    state["done"] = serde_json::Value::Bool(false);
    state["segments"]
        .as_array_mut()
        .expect("segments")
        .truncate(2);
    std::fs::write(&cp_path, serde_json::to_vec(&cp).expect("json")).expect("write");
    let kept = root.join("360p/seg_00003.ts");
    let kept_mtime = mtime(&kept);

    let ev = rerun(&clip, &out);
    let skipped: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "rendition_skipped")
        .map(|e| e["rendition"].as_str().expect("name"))
        .collect();
    assert_eq!(skipped, vec!["360p", "audio"]);
    assert!(ev
        .iter()
        .any(|e| e["event"] == "resume" && e["from_segment"] == 2));
    assert!(ev
        .iter()
        .filter(|e| e["event"] == "segment_written")
        .all(|e| e["rendition"] == "240p"));
    assert_eq!(
        mtime(&kept),
        kept_mtime,
        "a finished rendition was re-encoded"
    );
    check_package(
        &root,
        &Expect {
            sizes: vec![(640, 360), (426, 240)],
            audio: true,
            frames: 100,
            fps: 25.0,
        },
    );
}

#[test]
fn a_damaged_checkpoint_is_kept_aside_with_a_warning_and_the_run_starts_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "damaged.mp4", &ClipSpec::new(640, 360, 2.0));
    let out = tmp.path().join("out");
    let state_dir = out.join("damaged/.vidpipe");
    std::fs::create_dir_all(&state_dir).expect("mkdir");
    let garbage = b"{\"version\": 1, \"inp";
    std::fs::write(state_dir.join("checkpoint.json"), garbage).expect("write");

    let ev = rerun(&clip, &out);
    let warning = ev
        .iter()
        .find(|e| e["event"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {ev:?}"));
    assert!(
        warning["message"]
            .as_str()
            .unwrap_or("")
            .contains("checkpoint.json.damaged"),
        "{warning}"
    );
    assert!(!ev.iter().any(|e| e["event"] == "resume"), "{ev:?}");
    assert_eq!(
        std::fs::read(state_dir.join("checkpoint.json.damaged")).expect("damaged copy"),
        garbage
    );
    let cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("checkpoint.json")).expect("read"))
            .expect("new checkpoint parses");
    assert!(cp["renditions"]["360p"]["done"] == true, "{cp}");
    assert!(out.join("damaged/master.m3u8").exists());
}

#[test]
fn ctrl_c_keeps_a_resumable_checkpoint_and_no_temp_files() {
    let (_tmp, clip, out, child) = encoding_past_segment("stop.mp4", 2);
    let sent = run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    assert!(sent.status.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let root = out.join("stop");
    assert!(!root.join("master.m3u8").exists());
    assert!(root.join(".vidpipe/checkpoint.json").exists());
    let leftovers: Vec<_> = files_under(&root)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    let ev = rerun(&clip, &out);
    assert!(ev.iter().any(|e| e["event"] == "resume"));
    check_package(&root, &Expect::sd_clip(10));
}
