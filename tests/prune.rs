//! `vidpipe prune` on local trees and on a real Garage: what it deletes
//! and keeps, dry runs, incomplete uploads, the safety rails, bad input,
//! and the two promises cron relies on: a reader of a live stream pruned
//! every second never gets a 404, and a transcode in progress loses
//! nothing.

mod common;

use common::garage::Garage;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Seconds since the epoch, for `VIDPIPE_PRUNE_NOW`.
fn epoch(t: SystemTime) -> String {
    format!(
        "{:.3}",
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64()
    )
}

/// Writes `key` under `root`, modified `age` seconds ago.
fn aged(root: &Path, key: &str, text: &str, age: u64) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(age))
        .expect("mtime");
}

fn files(root: &Path) -> Vec<String> {
    let mut keys: Vec<String> = walk(root)
        .into_iter()
        .map(|p| {
            p.strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    keys.sort();
    keys
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// An hour-old finished package with a leftover of an older ladder.
fn old_package(root: &Path) {
    aged(
        root,
        "vod/talk/master.m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n",
        3600,
    );
    aged(
        root,
        "vod/talk/720p/index.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg_00000.ts\n#EXT-X-ENDLIST\n",
        3600,
    );
    aged(root, "vod/talk/720p/seg_00000.ts", "ts", 3600);
    aged(root, "vod/talk/360p/seg_00000.ts", "old ladder", 7200);
}

#[test]
fn a_dry_run_lists_what_would_go_and_why_then_the_run_deletes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    old_package(dir.path());
    let before = files(dir.path());
    let o = run(vidpipe()
        .arg("prune")
        .arg(dir.path())
        .args(["--older-than", "10m", "--dry-run"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("would delete")
            && stdout.contains("360p/seg_00000.ts")
            && stdout.contains("segment no playlist references"),
        "{stdout}"
    );
    assert_eq!(files(dir.path()), before, "a dry run deletes nothing");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("would delete 1 file") && stderr.contains("kept 3 files"),
        "{stderr}"
    );

    let o = run(vidpipe().arg("prune").arg(dir.path()).args([
        "--older-than",
        "10m",
        "--progress",
        "json",
    ]));
    assert!(o.status.success());
    let events = events(&o.stdout);
    let deleted: Vec<_> = events.iter().filter(|e| e["event"] == "deleted").collect();
    assert_eq!(deleted.len(), 1, "{events:?}");
    assert_eq!(deleted[0]["reason"], "unreferenced");
    assert_eq!(deleted[0]["bytes"], 10);
    let summary = events.last().expect("summary");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["deleted"]["unreferenced"]["files"], 1);
    assert_eq!(summary["kept"]["published"]["files"], 3);
    assert!(!dir.path().join("vod/talk/360p").exists());

    // --expire takes the whole hour-old package.
    let o =
        run(vidpipe()
            .arg("prune")
            .arg(dir.path())
            .args(["--older-than", "10m", "--expire", "-q"]));
    assert!(o.status.success());
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn the_safety_rails_and_bad_input_have_clear_errors() {
    let home = tempfile::tempdir().expect("tempdir");
    for (args, code, says) in [
        (
            vec!["/", "--older-than", "1d", "--expire"],
            2,
            "--allow-root",
        ),
        (
            vec!["s3://media", "--older-than", "1d", "--expire"],
            2,
            "--allow-root",
        ),
        (
            vec!["s3://media/", "--older-than", "1d", "--expire"],
            2,
            "--allow-root",
        ),
        (vec!["/tmp"], 2, "--older-than"),
        (vec!["/tmp", "--older-than", "soon"], 2, "--older-than"),
        (
            vec!["/tmp", "--older-than", "1d", "--lifecycle", "3"],
            2,
            "s3://",
        ),
        (
            vec!["/no/such/dir", "--older-than", "1d"],
            1,
            "/no/such/dir",
        ),
    ] {
        let o = run(vidpipe().env("HOME", home.path()).arg("prune").args(&args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // The home directory, however it is written.
    let o = run(vidpipe()
        .env("HOME", home.path())
        .arg("prune")
        .arg(home.path().join("."))
        .args(["--older-than", "1d", "--expire"]));
    assert_eq!(o.status.code(), Some(2));

    // A malformed playlist: reported, its output kept whole.
    let dir = tempfile::tempdir().expect("tempdir");
    old_package(dir.path());
    aged(
        dir.path(),
        "vod/talk/720p/index.m3u8",
        "#EXTM3U\n#EXTINF:6,\n",
        3600,
    );
    let before = files(dir.path());
    let o = run(vidpipe()
        .arg("prune")
        .arg(dir.path())
        .args(["--older-than", "1m", "--expire"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("720p/index.m3u8") && stderr.contains("kept"),
        "{stderr}"
    );
    assert_eq!(files(dir.path()), before);

    // A link to a directory outside: never entered, its target untouched.
    let outside = tempfile::tempdir().expect("tempdir");
    aged(outside.path(), "precious/seg_00000.ts", "keep", 7200);
    let dir = tempfile::tempdir().expect("tempdir");
    old_package(dir.path());
    std::os::unix::fs::symlink(
        outside.path().join("precious"),
        dir.path().join("vod/talk/720p/elsewhere"),
    )
    .expect("link");
    let o = run(vidpipe().arg("prune").arg(dir.path()).args([
        "--older-than",
        "1m",
        "--expire",
        "--allow-root",
        "-q",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(files(outside.path()), ["precious/seg_00000.ts"]);
}

fn prune_cmd(garage: &Garage, state: &Path) -> Command {
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state).arg("prune");
    cmd
}

/// A finished one-rendition package under `prefix`: master, media
/// playlist, one segment.
fn put_package(garage: &Garage, prefix: &str) {
    garage.put(
        &format!("{prefix}/master.m3u8"),
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n".to_vec(),
    );
    garage.put(
        &format!("{prefix}/720p/index.m3u8"),
        b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg_00000.ts\n#EXT-X-ENDLIST\n".to_vec(),
    );
    garage.put(&format!("{prefix}/720p/seg_00000.ts"), b"ts".to_vec());
}

#[test]
fn a_bucket_prefix_is_pruned_by_class_and_a_dry_run_changes_nothing() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    // A live stream (window 2 of 1 s segments), a finished package with a
    // leftover, and plain uploads.
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:6\n");
    for i in 0..8 {
        garage.put(&format!("p/live/captions-{i}.vtt"), b"WEBVTT\n".to_vec());
    }
    for i in 6..8 {
        playlist.push_str(&format!("#EXTINF:1.000,\ncaptions-{i}.vtt\n"));
    }
    garage.put("p/live/captions.m3u8", playlist.into_bytes());
    put_package(&garage, "p/vod/talk");
    garage.put("p/vod/talk/360p/seg_00000.ts", b"old".to_vec());
    garage.put("p/raw/upload.mp4", b"raw".to_vec());
    garage.put("other/untouched.ts", b"not under DEST".to_vec());
    let before = garage.keys("");
    let dest = format!("s3://{}/p", garage.bucket);
    // A minute later: every grace (1 s × 3) is over.
    let later = epoch(SystemTime::now() + Duration::from_secs(60));

    let o = run(prune_cmd(&garage, state.path())
        .env("VIDPIPE_PRUNE_NOW", &later)
        .arg(&dest)
        .args(["--older-than", "30s", "--dry-run", "--progress", "json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(garage.keys(""), before, "a dry run deletes nothing");
    let events = events(&o.stdout);
    let would: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "deleted")
        .map(|e| format!("{} {}", e["path"].as_str().unwrap_or(""), e["reason"]))
        .collect();
    assert_eq!(would.len(), 7, "{would:?}");
    assert!(
        would
            .iter()
            .all(|w| w.contains("\"left-window\"") || w.contains("360p")),
        "{would:?}"
    );

    let o = run(prune_cmd(&garage, state.path())
        .env("VIDPIPE_PRUNE_NOW", &later)
        .arg(&dest)
        .args(["--older-than", "30s"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut left = garage.keys("");
    left.sort();
    assert_eq!(
        left,
        [
            "other/untouched.ts",
            "p/live/captions-6.vtt",
            "p/live/captions-7.vtt",
            "p/live/captions.m3u8",
            "p/raw/upload.mp4",
            "p/vod/talk/720p/index.m3u8",
            "p/vod/talk/720p/seg_00000.ts",
            "p/vod/talk/master.m3u8",
        ]
    );
    // A second prune finds nothing more to do and does not fail.
    let o = run(prune_cmd(&garage, state.path())
        .env("VIDPIPE_PRUNE_NOW", &later)
        .arg(&dest)
        .args(["--older-than", "30s", "--expire", "--progress", "json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let left = garage.keys("p/");
    assert!(left.is_empty(), "--expire took everything: {left:?}");
    assert_eq!(garage.keys("other/"), ["other/untouched.ts"]);
}

#[test]
fn state_kept_under_a_state_dir_marks_a_bucket_job_in_progress() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    // A published package being transcoded again into the bucket (other
    // settings), its checkpoint kept on this machine with --state-dir: the
    // new segments are not listed by any playlist yet.
    put_package(&garage, "p/talk");
    garage.put("p/talk/720p/seg_00001.ts", b"new".to_vec());
    let later = SystemTime::now() + Duration::from_secs(60);
    let checkpoint = elsewhere
        .path()
        .join("s3")
        .join(&garage.bucket)
        .join("p/talk/.vidpipe/checkpoint.json");
    std::fs::create_dir_all(checkpoint.parent().expect("parent")).expect("mkdir");
    std::fs::write(&checkpoint, "{}").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&checkpoint)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    let dest = format!("s3://{}/p", garage.bucket);
    let would_delete = |extra: &[&str]| -> Vec<String> {
        let o = run(prune_cmd(&garage, state.path())
            .env("VIDPIPE_PRUNE_NOW", epoch(later))
            .arg(&dest)
            .args(["--older-than", "30s", "--dry-run", "--progress", "json"])
            .args(extra));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        events(&o.stdout)
            .iter()
            .filter(|e| e["event"] == "deleted")
            .map(|e| e["path"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        would_delete(&[]),
        [format!("s3://{}/p/talk/720p/seg_00001.ts", garage.bucket)],
        "without the state the new segment is an unreferenced leftover"
    );
    let dir = elsewhere.path().to_str().expect("utf8");
    assert!(
        would_delete(&["--state-dir", dir]).is_empty(),
        "the job is in progress"
    );
}

#[test]
fn old_incomplete_uploads_are_aborted_and_young_ones_kept() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let client = garage.client();
    let rt = common::garage::runtime();
    let start = |key: &str| {
        rt.block_on(
            client
                .create_multipart_upload()
                .bucket(&garage.bucket)
                .key(key)
                .send(),
        )
        .expect("create upload")
        .upload_id()
        .expect("id")
        .to_string()
    };
    let old = start("up/old.bin");
    std::thread::sleep(Duration::from_secs(4));
    let young = start("up/young.bin");
    start("elsewhere/other.bin");
    let listed = || {
        let answer = rt
            .block_on(
                client
                    .list_multipart_uploads()
                    .bucket(&garage.bucket)
                    .send(),
            )
            .expect("list uploads");
        let mut ids: Vec<String> = answer
            .uploads()
            .iter()
            .filter_map(|u| u.upload_id().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    let before = listed();
    assert_eq!(before.len(), 3);
    let dest = format!("s3://{}/up/", garage.bucket);
    let o = run(prune_cmd(&garage, state.path()).arg(&dest).args([
        "--older-than",
        "3s",
        "--abort-uploads",
        "--dry-run",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("would abort"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(listed(), before, "a dry run aborts nothing");
    let o = run(prune_cmd(&garage, state.path()).arg(&dest).args([
        "--older-than",
        "3s",
        "--abort-uploads",
        "--progress",
        "json",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = events(&o.stdout);
    let aborted: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "upload_aborted")
        .filter_map(|e| e["upload_id"].as_str())
        .collect();
    assert_eq!(aborted, [old.as_str()]);
    let after = listed();
    assert!(after.contains(&young) && !after.contains(&old), "{after:?}");
    assert_eq!(after.len(), 2);
}

#[test]
fn a_missing_bucket_and_wrong_credentials_are_clear_errors() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let o = run(prune_cmd(&garage, state.path()).args([
        "s3://no-such-bucket/x/",
        "--older-than",
        "1m",
    ]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no such bucket"), "{stderr}");
    let mut cmd = prune_cmd(&garage, state.path());
    cmd.env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .env("VIDPIPE_RETRY_FOR", "1s")
        .arg(format!("s3://{}/x/", garage.bucket))
        .args(["--older-than", "1m"]);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("wrong-secret"), "{stderr}");
    assert!(
        stderr.contains("SignatureDoesNotMatch")
            || stderr.contains("InvalidAccessKeyId")
            || stderr.contains("Forbidden")
            || stderr.contains("403"),
        "{stderr}"
    );
}

#[test]
fn a_key_without_permission_to_delete_is_a_clear_error_and_deletes_nothing() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    garage.put(
        "p/talk/master.m3u8",
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n".to_vec(),
    );
    garage.put("p/talk/360p/seg_00000.ts", b"leftover".to_vec());
    let before = garage.keys("p/");
    let (id, secret) = garage.read_only_key();
    let later = epoch(SystemTime::now() + Duration::from_secs(3600));
    let o = run(prune_cmd(&garage, state.path())
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("VIDPIPE_PRUNE_NOW", &later)
        .env("VIDPIPE_RETRY_FOR", "1s")
        .arg(format!("s3://{}/p", garage.bucket))
        .args(["--older-than", "1m"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("360p/seg_00000.ts") && stderr.contains("cannot delete"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AccessDenied") || stderr.contains("Forbidden") || stderr.contains("403"),
        "{stderr}"
    );
    assert!(!stderr.contains(&secret), "{stderr}");
    assert_eq!(garage.keys("p/"), before);
}

/// GETs `key`, `None` for a 404.
fn fetch(
    client: &aws_sdk_s3::Client,
    rt: &tokio::runtime::Runtime,
    bucket: &str,
    key: &str,
) -> Option<Vec<u8>> {
    let answer = rt.block_on(client.get_object().bucket(bucket).key(key).send());
    match answer {
        Ok(object) => Some(
            rt.block_on(object.body.collect())
                .expect("body")
                .into_bytes()
                .to_vec(),
        ),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
        Err(e) => panic!("GET {key}: {e:?}"),
    }
}

#[test]
fn a_live_stream_pruned_every_second_never_gives_its_reader_a_404() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let work = tempfile::tempdir().expect("tempdir");
    let transcript = work.path().join("live.srt");
    std::fs::write(&transcript, "").expect("transcript");
    let dest = format!("s3://{}/live", garage.bucket);
    let mut captions = vidpipe();
    garage.env(&mut captions);
    let mut captions = captions
        .env("XDG_STATE_HOME", state.path())
        .arg("captions")
        .arg(format!("en={}", transcript.display()))
        .args(["-o", &dest, "--follow", "--window", "3", "--interval", "1s"])
        .args(["--segment-duration", "1", "--progress", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start captions");

    let done = AtomicBool::new(false);
    let fetched = AtomicUsize::new(0);
    let pruned = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // The producer: a cue every half second for 14 s, then the end.
        scope.spawn(|| {
            let mut text = String::new();
            for i in 0..28u32 {
                let (start, end) = (i * 500, i * 500 + 400);
                text.push_str(&format!(
                    "{}\n{} --> {}\ncue {i}\n\n",
                    i + 1,
                    srt_time(start),
                    srt_time(end)
                ));
                std::fs::write(&transcript, &text).expect("append");
                std::thread::sleep(Duration::from_millis(500));
            }
            let mut marker = transcript.clone().into_os_string();
            marker.push(".end");
            std::fs::write(marker, "").expect("end marker");
        });
        // Cron, every second.
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let o = run(prune_cmd(&garage, state.path()).arg(&dest).args([
                    "--older-than",
                    "2s",
                    "--progress",
                    "json",
                ]));
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                let deleted = events(&o.stdout)
                    .iter()
                    .filter(|e| e["event"] == "deleted")
                    .count();
                pruned.fetch_add(deleted, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        // The reader: the playlist, then every segment it lists, again and
        // again.
        scope.spawn(|| {
            let client = garage.client();
            let rt = common::garage::runtime();
            while !done.load(Ordering::SeqCst) {
                let Some(playlist) = fetch(&client, &rt, &garage.bucket, "live/captions.m3u8")
                else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let playlist = String::from_utf8(playlist).expect("text");
                for uri in playlist
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let key = format!("live/{uri}");
                    assert!(
                        fetch(&client, &rt, &garage.bucket, &key).is_some(),
                        "{key} is listed but gone:\n{playlist}"
                    );
                    fetched.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(90);
        while captions.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "captions --follow did not end");
            std::thread::sleep(Duration::from_millis(200));
        }
        // One more prune round after the end, for the graces to run out.
        std::thread::sleep(Duration::from_secs(6));
        done.store(true, Ordering::SeqCst);
    });
    let output = captions.wait_with_output().expect("captions output");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No segment was stored twice.
    let written: Vec<u64> = events(&output.stdout)
        .iter()
        .filter(|e| e["event"] == "segment_written")
        .filter_map(|e| e["index"].as_u64())
        .collect();
    let mut unique = written.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        written.len(),
        "a segment was stored twice: {written:?}"
    );
    assert!(written.len() >= 10, "{written:?}");
    assert!(
        fetched.load(Ordering::SeqCst) > 20,
        "the reader read too little"
    );
    // What left the window went; the last window stays.
    assert!(
        pruned.load(Ordering::SeqCst) >= 5,
        "prune deleted too little"
    );
    let left: Vec<String> = garage
        .keys("live/")
        .into_iter()
        .filter(|k| k.ends_with(".vtt"))
        .collect();
    assert!(
        left.len() <= 5,
        "segments that left the window stay: {left:?}"
    );
    assert!(
        !left.contains(&"live/captions-0.vtt".to_string()),
        "{left:?}"
    );
}

fn srt_time(ms: u32) -> String {
    format!(
        "00:{:02}:{:02},{:03}",
        ms / 60_000,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[test]
fn a_transcode_in_progress_loses_nothing_and_expires_top_down_once_published() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let dest = format!("s3://{}/vod", garage.bucket);
    let mut transcode = vidpipe();
    garage.env(&mut transcode);
    let mut transcode = transcode
        .env("XDG_STATE_HOME", state.path())
        .args(["transcode-hls", "fixtures/sample.mp4", "-o", &dest])
        .args([
            "--preset",
            "slow",
            "--ladder",
            "480:1400k,240:400k",
            "--segment-duration",
            "1",
            "--threads",
            "1",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start transcode");
    // Wait for the first segment, then until the job has saved its
    // checkpoint well after it, and hold the job there. Prune then decides
    // as if one second had passed since that save: the first segments are
    // older than the limit, the job's state is not.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !garage
        .keys("vod/sample/")
        .iter()
        .any(|k| k.ends_with(".ts"))
    {
        assert!(Instant::now() < deadline, "no segment was stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_seen = SystemTime::now();
    // The checkpoint lives beside the output in the bucket.
    let saved = || {
        garage
            .newest("vod/sample/.vidpipe/")
            .expect("the checkpoint beside the output")
    };
    while saved() < first_seen + Duration::from_millis(1500) {
        assert!(Instant::now() < deadline, "the transcode did not go on");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = transcode.id().to_string();
    assert!(run(Command::new("kill").args(["-STOP", &pid]))
        .status
        .success());
    let before = garage.keys("vod/");
    let o = run(prune_cmd(&garage, state.path())
        .env("VIDPIPE_PRUNE_NOW", epoch(saved() + Duration::from_secs(1)))
        .arg(&dest)
        .args(["--older-than", "2s", "--progress", "json"]));
    assert!(run(Command::new("kill").args(["-CONT", &pid]))
        .status
        .success());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        garage.keys("vod/"),
        before,
        "prune deleted part of a job in progress: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let summary = events(&o.stdout).pop().expect("summary");
    assert!(
        summary["kept"]["in-progress"]["files"].as_u64() >= Some(1),
        "{summary}"
    );
    let status = transcode.wait().expect("transcode");
    assert!(status.success());
    assert!(garage
        .keys("vod/sample/")
        .contains(&"vod/sample/master.m3u8".to_string()));

    // Published and older than the limit: --expire removes it all.
    let later = epoch(SystemTime::now() + Duration::from_secs(120));
    let o = run(prune_cmd(&garage, state.path())
        .env("VIDPIPE_PRUNE_NOW", &later)
        .arg(&dest)
        .args(["--older-than", "1m", "--expire", "--progress", "json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let order: Vec<String> = events(&o.stdout)
        .iter()
        .filter(|e| e["event"] == "deleted")
        .filter_map(|e| e["path"].as_str().map(str::to_string))
        .collect();
    assert!(order[0].ends_with("vod/sample/master.m3u8"), "{order:?}");
    let media_playlists = order.iter().take_while(|k| k.ends_with(".m3u8")).count();
    assert!(
        media_playlists >= 3,
        "playlists go before segments: {order:?}"
    );
    assert!(garage.keys("vod/").is_empty(), "{:?}", garage.keys("vod/"));
}

#[test]
fn a_lifecycle_rule_is_installed_for_the_prefix_and_other_rules_are_kept() {
    let garage = Garage::start();
    let state = tempfile::tempdir().expect("tempdir");
    let client = garage.client();
    let rt = common::garage::runtime();
    let rules = || {
        let answer = rt.block_on(
            client
                .get_bucket_lifecycle_configuration()
                .bucket(&garage.bucket)
                .send(),
        );
        answer
            .map(|a| {
                a.rules()
                    .iter()
                    .map(|r| {
                        (
                            r.id().unwrap_or_default().to_string(),
                            r.abort_incomplete_multipart_upload()
                                .and_then(|a| a.days_after_initiation()),
                            r.expiration().and_then(|e| e.days()),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    for (prefix, args) in [("live/", vec![]), ("raw/", vec!["--expire"])] {
        let o = run(prune_cmd(&garage, state.path())
            .arg(format!("s3://{}/{prefix}", garage.bucket))
            .args(["--older-than", "1d", "--lifecycle", "3"])
            .args(args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        assert!(stderr.contains("lifecycle rule"), "{stderr}");
    }
    let mut found = rules();
    found.sort();
    assert_eq!(
        found,
        [
            ("vidpipe-prune:live/".to_string(), Some(3), None),
            ("vidpipe-prune:raw/".to_string(), Some(3), Some(3)),
        ]
    );
}

#[test]
fn two_prunes_at_once_neither_fail_nor_count_a_file_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An abandoned job: old state, 2000 segments no playlist lists.
    aged(dir.path(), "out/talk/.vidpipe/checkpoint.json", "{}", 7200);
    for i in 0..2000 {
        aged(
            dir.path(),
            &format!("out/talk/720p/seg_{i:05}.ts"),
            "ts",
            7200,
        );
    }
    let spawn = || {
        vidpipe()
            .arg("prune")
            .arg(dir.path())
            .args(["--older-than", "1h", "--progress", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prune")
    };
    let (a, b) = (spawn(), spawn());
    let mut deleted = 0;
    for child in [a, b] {
        let o = child.wait_with_output().expect("prune");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        deleted += events(&o.stdout)
            .iter()
            .filter(|e| e["event"] == "deleted")
            .count();
    }
    assert_eq!(deleted, 2001, "each file counted once, by one of them");
    assert!(files(dir.path()).is_empty());
}
