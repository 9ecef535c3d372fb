//! Bad inputs in a batch: each gets a clear error naming the file, the exit
//! code is 1, no master playlist appears for it, and the good inputs of the
//! same run are still published.

mod common;

use common::*;
use std::path::Path;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write fixture");
}

#[test]
fn bad_inputs_fail_alone_and_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let good = make_clip(dir, "good.mp4", &ClipSpec::new(320, 240, 2.0));

    let empty = dir.join("empty.mp4");
    write(&empty, b"");
    let random = dir.join("random.mp4");
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&random, &noise);
    let text = dir.join("notes.txt");
    write(&text, b"this is not a video\n");

    // Truncated with the index at the end (moov lost) and at the front
    // (media data cut short).
    let moov_last = dir.join("moov-last.mp4");
    let o = run(std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&good)
        .args(["-c", "copy", "-movflags", "-faststart"])
        .arg(&moov_last));
    assert!(o.status.success());
    let bytes = std::fs::read(&moov_last).expect("read");
    let cut_end = dir.join("cut-end.mp4");
    write(&cut_end, &bytes[..bytes.len() / 2]);
    std::fs::remove_file(&moov_last).expect("rm");
    let long = make_clip(dir, "long.mp4", &ClipSpec::new(320, 240, 6.0));
    let bytes = std::fs::read(&long).expect("read");
    let cut_data = dir.join("cut-data.mp4");
    write(&cut_data, &bytes[..bytes.len() / 2]);
    std::fs::remove_file(&long).expect("rm");

    let missing = dir.join("missing.mp4");
    let out = dir.join("out");
    let inputs = [&empty, &random, &text, &cut_end, &cut_data, &missing, &good];
    let o = run(vidpipe()
        .arg("transcode-hls")
        .args(inputs)
        .arg("-o")
        .arg(&out)
        .args(["--preset", "ultrafast", "--progress", "json"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for bad in &inputs[..6] {
        let name = bad.display().to_string();
        let line = stderr
            .lines()
            .find(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("no error names {name}: {stderr}"));
        assert!(line.starts_with("error: "), "{line}");
        let stem = bad.file_stem().and_then(|s| s.to_str()).expect("stem");
        assert!(
            !out.join(stem).join("master.m3u8").exists(),
            "master written for bad input {name}"
        );
    }
    assert!(stderr.contains("no such file"), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(
        out.join("good/master.m3u8").exists(),
        "the good input was not published"
    );
    let ev = events(&o.stdout);
    assert_eq!(ev.iter().filter(|e| e["event"] == "error").count(), 6);
    assert_eq!(ev.iter().filter(|e| e["event"] == "done").count(), 1);
}

#[test]
fn unreadable_directory_is_reported_and_the_rest_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // Root reads any directory, so run vidpipe as `nobody` when we are root.
    let as_root = run(std::process::Command::new("id").arg("-u")).stdout == b"0\n";
    set_mode(dir, 0o755);
    let good = make_clip(dir, "fine.mp4", &ClipSpec::new(320, 240, 1.0));
    set_mode(&good, 0o644);
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    make_clip(&locked, "hidden.mp4", &ClipSpec::new(320, 240, 1.0));
    set_mode(&locked, 0o000);
    let out = dir.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    set_mode(&out, 0o777);
    let mut cmd = if as_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_vidpipe"));
        c
    } else {
        vidpipe()
    };
    cmd.arg("transcode-hls")
        .arg(&locked)
        .arg(&good)
        .arg("-o")
        .arg(&out)
        .args(["--preset", "ultrafast", "-q"]);
    let o = run(&mut cmd);
    set_mode(&locked, 0o755);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&locked.display().to_string()) && stderr.contains("permission denied"),
        "{stderr}"
    );
    assert!(out.join("fine/master.m3u8").exists(), "{stderr}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn missing_output_is_a_usage_error() {
    let o = run(vidpipe().args(["transcode-hls", "fixtures/sample.mp4"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-o DEST"));
}
