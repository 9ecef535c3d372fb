//! `vidpipe run` end to end: a manifest over a bucket prefix publishes
//! each input with its own steps (captions attached to its master,
//! commentary), skips steps whose files an input lacks, reports a corrupt
//! input with its reason, deletes only the sources that succeeded, re-runs
//! without storing anything, reads a remote input once for two decoding
//! steps (counted by a proxy), leaves no scratch behind (also after
//! Ctrl-C), and refuses bad manifests before any work.

mod common;

use common::faulty_proxy::FaultyProxy;
use common::garage::Garage;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A TTS command writing a short tone, so tests do not depend on a voice.
fn tone_tts(dir: &Path) -> String {
    let script = dir.join("tone.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nexec ffmpeg -v error -y -f lavfi -i sine=frequency=1500:sample_rate=48000:duration=0.5 -ac 1 \"$1\"\n",
    )
    .expect("write tts");
    format!("sh {} {{out}}", script.display())
}

fn srt(text: &str) -> Vec<u8> {
    format!("1\n00:00:01,000 --> 00:00:03,000\n{text}\n\n").into_bytes()
}

/// `vidpipe run MANIFEST --progress json` against `garage`, with its own
/// temp dir (to see scratch left behind) and state root.
fn pipeline(garage: &Garage, dir: &Path, manifest: &Path) -> Command {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("TMPDIR", &tmp)
        .env("XDG_STATE_HOME", dir.join("state"))
        .arg("run")
        .arg(manifest)
        .args(["--progress", "json"]);
    cmd
}

fn write_manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

fn summary(events: &[serde_json::Value]) -> serde_json::Value {
    events
        .iter()
        .find(|e| e["event"] == "summary")
        .cloned()
        .expect("summary event")
}

fn input_of<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["input"].as_str().unwrap_or("").ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in {summary}"))
}

fn outcomes(input: &serde_json::Value) -> Vec<String> {
    input["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["step"].as_str().unwrap_or(""),
                s["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Scratch a run left in `dir/tmp`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("tmp"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_manifest_publishes_each_input_with_its_own_steps_and_reruns_for_free() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let bytes = std::fs::read(&clip).expect("clip");
    garage.put("raw/talk.mp4", bytes.clone());
    garage.put("raw/talk.en.srt", srt("Hello"));
    garage.put("raw/talk.fr.srt", srt("Bonjour"));
    garage.put(
        "raw/talk.commentary.yaml",
        b"- at: 0.5\n  text: hello\n".to_vec(),
    );
    garage.put("raw/plain.mp4", bytes);
    garage.put("raw/broken.mp4", b"not a video at all".to_vec());
    let steps = format!(
        "steps:\n  - transcode-hls: {{ladder: \"240:300k\", preset: ultrafast}}\n  - captions: {{tracks: \"{{stem}}.*.srt\", attach: true}}\n  - commentary:\n      script: \"{{stem}}.commentary.yaml\"\n      interval: 2s\n      preset: ultrafast\n      tts-cmd: \"{}\"\n",
        tone_tts(dir.path())
    );
    let head = format!(
        "inputs: [s3://{b}/raw/]\noutput: s3://{b}/vod\n",
        b = garage.bucket
    );
    let manifest = write_manifest(dir.path(), "p.yaml", &format!("{head}{steps}"));
    let report = dir.path().join("report.json");

    // An output bucket that does not exist stops the run before any work.
    let nowhere = write_manifest(
        dir.path(),
        "nowhere.yaml",
        &format!(
            "inputs: [s3://{b}/raw/]\noutput: s3://no-such-bucket/vod\n{steps}",
            b = garage.bucket
        ),
    );
    let o = run(&mut pipeline(&garage, dir.path(), &nowhere));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nowhere.yaml:2: output: no such bucket"),
        "{stderr}"
    );

    let o = run(pipeline(&garage, dir.path(), &manifest)
        .arg("--report")
        .arg(&report));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first = events(&o.stdout);
    let sum = summary(&first);
    assert_eq!(
        (sum["succeeded"].as_u64(), sum["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        outcomes(input_of(&sum, "talk.mp4")),
        ["transcode-hls done", "captions done", "commentary done"]
    );
    assert_eq!(
        outcomes(input_of(&sum, "plain.mp4")),
        [
            "transcode-hls done",
            "captions skipped",
            "commentary skipped"
        ]
    );
    let broken = input_of(&sum, "broken.mp4");
    assert_eq!(
        outcomes(broken),
        [
            "transcode-hls failed",
            "captions not-run",
            "commentary not-run"
        ]
    );
    let reason = broken["steps"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("not a media file"), "{reason}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!("s3://{}/raw/broken.mp4", garage.bucket)),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    let mut expected = sum.clone();
    expected.as_object_mut().map(|m| m.remove("event"));
    assert_eq!(written, expected);
    // Every event of a step names its input and step.
    let segment = first
        .iter()
        .find(|e| e["event"] == "segment_written")
        .expect("segments written");
    assert_eq!(segment["step"], "transcode-hls");
    assert!(segment["input"].as_str().unwrap_or("").starts_with("s3://"));

    let local = dir.path().join("vod");
    garage.download("vod/", &local);
    let master = std::fs::read_to_string(local.join("talk/master.m3u8")).expect("master");
    assert!(
        master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"fr\""),
        "{master}"
    );
    assert!(local.join("talk/captions/captions-fr.m3u8").is_file());
    assert!(local.join("talk/commentary/commentary.mp4").is_file());
    let plain = std::fs::read_to_string(local.join("plain/master.m3u8")).expect("master");
    assert!(!plain.contains("SUBTITLES"));
    assert!(!local.join("plain/commentary").exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    // Again: everything finished is complete, nothing is stored.
    let stored = garage.objects("vod/");
    let o = run(&mut pipeline(&garage, dir.path(), &manifest));
    assert_eq!(o.status.code(), Some(1));
    let again = events(&o.stdout);
    for kind in [
        "segment_written",
        "chunk_ready",
        "step_done",
        "playlist_written",
    ] {
        assert_eq!(
            count(&again, kind),
            0,
            "{kind} on a re-run: {}",
            summary(&again)
        );
    }
    assert_eq!(garage.objects("vod/"), stored, "a re-run stored objects");
    assert_eq!(
        outcomes(input_of(&summary(&again), "talk.mp4")),
        [
            "transcode-hls complete",
            "captions complete",
            "commentary complete"
        ]
    );

    // delete-source removes the sources of the inputs that succeeded only.
    let manifest = write_manifest(
        dir.path(),
        "p.yaml",
        &format!("{head}{steps}delete-source: true\n"),
    );
    let o = run(&mut pipeline(&garage, dir.path(), &manifest));
    assert_eq!(o.status.code(), Some(1));
    let mut raw = garage.keys("raw/");
    raw.sort();
    assert_eq!(
        raw,
        [
            "raw/broken.mp4",
            "raw/talk.commentary.yaml",
            "raw/talk.en.srt",
            "raw/talk.fr.srt"
        ]
    );
}

#[test]
fn a_remote_input_decoded_by_two_steps_is_read_once_and_its_copy_removed() {
    let garage = Garage::start();
    let upstream = garage.endpoint.trim_start_matches("http://").to_string();
    let proxy = FaultyProxy::counting(&upstream);
    let dir = tempfile::tempdir().expect("tempdir");
    // Noisy enough that the clip is a few MB: other requests are small
    // beside it.
    let clip = dir.path().join("talk.mp4");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=25:duration=8,noise=alls=60:allf=t")
        .args(["-f", "lavfi", "-i", "sine=duration=8"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "4M",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let size = std::fs::metadata(&clip).expect("clip").len();
    garage.put("in/talk.mp4", std::fs::read(&clip).expect("read"));
    let manifest = write_manifest(
        dir.path(),
        "p.yaml",
        &format!(
            "inputs: [s3://{b}/in/talk.mp4]\noutput: s3://{b}/out\nsteps:\n  - transcode-hls: {{ladder: \"240:300k\", preset: ultrafast}}\n  - commentary: {{auto: true, interval: 4s, preset: ultrafast, tts-cmd: \"{tts}\"}}\n",
            b = garage.bucket,
            tts = tone_tts(dir.path())
        ),
    );
    let o = run(pipeline(&garage, dir.path(), &manifest).env("AWS_ENDPOINT_URL", &proxy.endpoint));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = proxy.faults.bytes_for("GET", "/in/talk.mp4");
    println!(
        "bytes read for a {size}-byte input decoded by two steps: {read} ({:.3}x)",
        read as f64 / size as f64
    );
    assert!(
        read as f64 <= 1.05 * size as f64,
        "{read} bytes read of {size}"
    );
    assert!(read >= size, "the input was not read: {read}");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    // Interrupted in the middle of a step: the copy goes too, and the
    // source stays although delete-source is asked for.
    let manifest = write_manifest(
        dir.path(),
        "p2.yaml",
        &std::fs::read_to_string(&manifest)
            .expect("read")
            .replace("/out", "/out2")
            .replace("steps:\n", "delete-source: true\nsteps:\n"),
    );
    let mut cmd = pipeline(&garage, dir.path(), &manifest);
    cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint);
    let cut = interrupt_when(cmd, "\"segment_written\"");
    assert_eq!(
        cut.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(
        garage.keys("in/"),
        ["in/talk.mp4"],
        "an interrupted input lost its source"
    );
}

#[test]
fn bad_manifests_exit_2_naming_the_line_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(dir.path(), "talk.mp4", &ClipSpec::new(160, 120, 1.0));
    let clip = clip.display();
    let out = dir.path().join("out");
    let cases = [
        (
            format!("inputs: [{clip}]\noutput: {}\nsteps:\n  - transcode-hls: {{}}\nretries: 3\n", out.display()),
            ":5:",
            "retries",
        ),
        (
            format!("inputs: [{clip}]\noutput: {}\nsteps:\n  - transcode-hls: {{}}\n  - subtitles: {{}}\n", out.display()),
            ":5:",
            "unknown step `subtitles`",
        ),
        (
            format!("inputs: [{clip}]\noutput: {}\nsteps:\n  - captions:\n      tracks: \"{{basename}}.srt\"\n", out.display()),
            ":5: captions.tracks:",
            "{basename}",
        ),
        (
            format!("inputs:\n  - {clip}\n  - {}/missing.mov\noutput: {}\nsteps:\n  - transcode-hls: {{}}\n", dir.path().display(), out.display()),
            ":3: inputs:",
            "missing.mov",
        ),
        (
            format!("inputs: [{clip}]\noutput: {}\nsteps:\n  - transcode-hls:\n      preset: warp\n", out.display()),
            ":5: transcode-hls.preset:",
            "unknown x264 preset",
        ),
        (
            format!("inputs: [{clip}]\noutput: {}\nsteps:\n  - transcode-hls:\n      output: elsewhere\n", out.display()),
            ":5: transcode-hls.output:",
            "pipeline's output",
        ),
    ];
    for (i, (text, at, says)) in cases.iter().enumerate() {
        let manifest = write_manifest(dir.path(), &format!("bad{i}.yaml"), text);
        let o = run(vidpipe().arg("run").arg(&manifest));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {stderr}");
        assert!(
            stderr.contains(&format!("bad{i}.yaml{at}")) && stderr.contains(says),
            "case {i}: {stderr}"
        );
        assert!(!out.exists(), "case {i} did work");
    }
}

#[test]
fn a_dry_run_lists_each_step_and_shards_split_the_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("raw");
    std::fs::create_dir_all(&raw).expect("raw");
    for name in ["a", "b", "c", "d", "e"] {
        make_clip(&raw, &format!("{name}.mp4"), &ClipSpec::new(160, 120, 1.0));
    }
    std::fs::write(raw.join("a.en.srt"), srt("Hi")).expect("srt");
    let out = dir.path().join("out");
    let manifest = write_manifest(
        dir.path(),
        "p.yaml",
        &format!(
            "inputs: [{}]\noutput: {}\nsteps:\n  - transcode-hls: {{ladder: \"120:200k\", preset: ultrafast}}\n  - captions: {{tracks: \"{{stem}}.*.srt\"}}\n",
            raw.display(),
            out.display()
        ),
    );
    let o = run(vidpipe().arg("run").arg(&manifest).arg("--dry-run"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("a.mp4: transcode-hls run, captions run"),
        "{listing}"
    );
    assert!(
        listing
            .contains("b.mp4: transcode-hls run, captions skip (no transcript matches `b.*.srt`)"),
        "{listing}"
    );
    assert!(!out.exists(), "a dry run touched the output");

    // Two machines' shares, run with two inputs at once each: together
    // every input once.
    let mut published = Vec::new();
    for k in 1..=2 {
        let o = run(vidpipe().arg("run").arg(&manifest).args([
            "--shard",
            &format!("{k}/2"),
            "--jobs",
            "2",
            "--progress",
            "json",
        ]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let all = events(&o.stdout);
        let started = all
            .iter()
            .find(|e| e["event"] == "run_started")
            .expect("run_started");
        assert_eq!(started["shard"], format!("{k}/2"));
        assert_eq!(started["of"], 5);
        for input in summary(&all)["inputs"].as_array().expect("inputs") {
            published.push(input["input"].as_str().unwrap_or("").to_string());
        }
    }
    published.sort();
    assert_eq!(published.len(), 5, "{published:?}");
    published.dedup();
    assert_eq!(published.len(), 5, "an input ran twice");
    for name in ["a", "b", "c", "d", "e"] {
        assert!(out.join(name).join("master.m3u8").is_file(), "{name}");
    }
    // The next dry run sees it all complete.
    let o = run(vidpipe().arg("run").arg(&manifest).arg("--dry-run"));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("a.mp4: transcode-hls complete"),
        "{listing}"
    );
}
