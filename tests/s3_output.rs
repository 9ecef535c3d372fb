//! transcode-hls into an S3 bucket on a real Garage server: the published
//! package is complete and plays, a killed run resumes, and bad credentials
//! give a clear error that never shows the secret.

mod common;

use common::garage::Garage;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const FAST: &[&str] = &["--preset", "ultrafast", "--segment-duration", "2", "-q"];

#[test]
fn transcode_to_a_bucket_publishes_a_complete_package() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state.path())
        .args([
            "transcode-hls",
            "fixtures/sample.mp4",
            "-o",
            &format!("s3://{}/vod", garage.bucket),
        ])
        .args(["--preset", "ultrafast", "--segment-duration", "2"]);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("s3://{}/vod/sample/master.m3u8", garage.bucket)),
        "{stderr}"
    );
    let keys = garage.keys("vod/sample/");
    for key in [
        "master.m3u8",
        "thumbnail.jpg",
        "720p/index.m3u8",
        "720p/iframes.m3u8",
        "audio/index.m3u8",
    ] {
        assert!(
            keys.contains(&format!("vod/sample/{key}")),
            "missing {key} in {keys:?}"
        );
    }
    // The checkpoint is beside the output, so any machine can resume it;
    // no playlist lists it.
    assert!(
        keys.contains(&"vod/sample/.vidpipe/checkpoint.json".to_string()),
        "{keys:?}"
    );
    let local = tempfile::tempdir().expect("tempdir");
    garage.download("vod/sample/", local.path());
    check_package(local.path(), &Expect::bundled_sample());
}

#[test]
fn killed_transcode_to_a_bucket_resumes_on_another_machine() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "long.mp4", &ClipSpec::new(854, 480, 10.0));
    let dest = format!("s3://{}/live", garage.bucket);
    // Each "machine" has its own state directory and working directory.
    let command = |machine: &str| {
        let home = tmp.path().join(machine);
        std::fs::create_dir_all(&home).expect("mkdir");
        let mut cmd = vidpipe();
        garage.env(&mut cmd);
        cmd.env("XDG_STATE_HOME", home.join("state"))
            .current_dir(&home)
            .arg("transcode-hls")
            .arg(&clip)
            .args([
                "-o",
                &dest,
                "--preset",
                "medium",
                "--threads",
                "1",
                "--segment-duration",
                "1",
            ])
            .args(["--progress", "json", "-q"]);
        cmd
    };
    let mut child = command("first")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        let e: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        if e["event"] == "segment_written" && e["index"].as_u64() >= Some(2) {
            break;
        }
    }
    child.kill().expect("kill");
    assert!(
        !child.wait().expect("wait").success(),
        "finished before the kill"
    );
    let before: Vec<(String, String, String)> = garage
        .objects("live/long/")
        .into_iter()
        .filter(|(k, _, _)| k.ends_with(".ts"))
        .collect();
    assert!(!before.is_empty());
    assert!(!garage
        .keys("live/long/")
        .contains(&"live/long/master.m3u8".to_string()));

    let o = run(&mut command("second"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o.stdout);
    assert!(
        ev.iter().any(|e| e["event"] == "resume"),
        "no resume: {ev:?}"
    );
    // What was stored before the kill stays as it was, but at most the one
    // segment per rendition that was being recorded when the kill came.
    let redone = garage.stored_again(&before);
    assert!(redone.values().all(|&n| n <= 1), "re-encoded: {redone:?}");
    eprintln!("segments stored again after the move, by rendition: {redone:?}");
    let local = tempfile::tempdir().expect("tempdir");
    garage.download("live/long/", local.path());
    check_package(local.path(), &Expect::sd_clip(10));
}

#[test]
fn wrong_credentials_fail_clearly_without_showing_the_secret() {
    let garage = Garage::start();
    let secret = "not-the-right-secret-0123456789abcdef";
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("AWS_SECRET_ACCESS_KEY", secret)
        .args([
            "transcode-hls",
            "fixtures/sample.mp4",
            "-o",
            &format!("s3://{}/x", garage.bucket),
            "--progress",
            "json",
        ])
        .args(FAST);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("s3://"), "{stderr}");
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "the secret leaked"
    );
}

#[test]
fn bucket_inputs_are_streamed_and_deleted_only_after_success() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 2.0));
    garage.put(
        "incoming/clip.mp4",
        std::fs::read(&clip).expect("read clip"),
    );
    garage.put("incoming/broken.mp4", b"definitely not a video".to_vec());
    garage.put("incoming/notes.txt", b"skip me".to_vec());
    let out = tmp.path().join("out");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", tmp.path().join("state"))
        .args([
            "transcode-hls",
            &format!("s3://{}/incoming/", garage.bucket),
            "-o",
        ])
        .arg(&out)
        .args(["--delete-source", "--progress", "json"])
        .args(FAST);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the broken object fails: {stderr}"
    );
    assert!(
        stderr.contains(&format!("s3://{}/incoming/broken.mp4", garage.bucket)),
        "{stderr}"
    );
    assert!(
        !stderr.contains("X-Amz-Signature") && !stdout.contains("X-Amz-Signature"),
        "a presigned URL leaked: {stderr}{stdout}"
    );
    check_package(
        &out.join("clip"),
        &Expect {
            sizes: vec![(320, 240)],
            audio: true,
            frames: 50,
            fps: 25.0,
        },
    );
    let left = garage.keys("incoming/");
    assert!(
        !left.contains(&"incoming/clip.mp4".to_string()),
        "published source not deleted: {left:?}"
    );
    assert!(
        left.contains(&"incoming/broken.mp4".to_string()),
        "failed source deleted: {left:?}"
    );
    assert!(left.contains(&"incoming/notes.txt".to_string()));
}

/// The same in a bucket: what the new master no longer lists is deleted
/// after it is written.
#[test]
fn a_settings_change_in_a_bucket_removes_what_the_new_master_no_longer_lists() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let transcode = |extra: &[&str]| {
        let mut cmd = vidpipe();
        garage.env(&mut cmd);
        cmd.env("XDG_STATE_HOME", state.path())
            .args([
                "transcode-hls",
                "fixtures/sample.mp4",
                "-o",
                &format!("s3://{}/vod", garage.bucket),
            ])
            .args(["--preset", "ultrafast", "--segment-duration", "2", "-q"])
            .args(extra);
        let o = run(&mut cmd);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    transcode(&["--ladder", "360:800k,240:400k"]);
    assert!(garage.keys("vod/sample/240p/").len() > 2);
    transcode(&["--ladder", "360:800k", "--segment-format", "fmp4"]);
    assert!(garage.keys("vod/sample/240p/").is_empty());
    let keys = garage.keys("vod/sample/");
    assert!(keys.iter().all(|k| !k.ends_with(".ts")), "{keys:?}");
    let local = tempfile::tempdir().expect("tempdir");
    garage.download("vod/sample/", local.path());
    assert_only_listed_files(local.path());
}

/// A missing object or bucket as input says which, not just "NotFound".
#[test]
fn a_missing_bucket_or_object_as_input_says_which() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state.path()).args([
        "transcode-hls",
        &format!("s3://{}/raw/missing.mp4", garage.bucket),
        "s3://no-such-bucket/raw/talk.mp4",
        "-o",
        &format!("s3://{}/vod", garage.bucket),
    ]);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no such object: s3://{}/raw/missing.mp4 does not exist",
            garage.bucket
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("no such bucket `no-such-bucket`"),
        "{stderr}"
    );
}
