//! The command line itself: probe output, configuration precedence
//! (flags > VIDPIPE_* > YAML > defaults), config errors with file and line,
//! and exit codes.

mod common;

use common::*;
use std::path::PathBuf;

#[test]
fn probe_prints_media_facts_as_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        rotate: Some(90),
        audio: Some("5.1"),
        ..ClipSpec::new(320, 240, 1.0)
    };
    let clip = make_clip(tmp.path(), "facts.mp4", &spec);
    let o = run(vidpipe().arg("probe").arg(&clip));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(info["container"]
        .as_str()
        .expect("container")
        .contains("mp4"));
    assert!((info["duration"].as_f64().expect("duration") - 1.0).abs() < 0.1);
    let v = &info["video"];
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(
        (v["display_width"].as_u64(), v["display_height"].as_u64()),
        (Some(240), Some(320))
    );
    assert!(v["rotation"] == 90 || v["rotation"] == 270);
    assert_eq!(v["fps"], 25.0);
    assert_eq!(v["codec"], "h264");
    let a = &info["audio"][0];
    assert_eq!(
        (
            a["codec"].as_str(),
            a["channels"].as_u64(),
            a["sample_rate"].as_u64()
        ),
        (Some("aac"), Some(6), Some(48000))
    );
    assert_eq!(a["language"], "und", "an untagged stream is undetermined");
}

#[test]
fn probe_of_a_missing_file_fails_naming_it() {
    let o = run(vidpipe().args(["probe", "no/such/clip.mp4"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no/such/clip.mp4"));
}

fn segment_duration_used(
    dir: &std::path::Path,
    config: Option<&str>,
    env: Option<&str>,
    flag: Option<&str>,
) -> f64 {
    let out = dir.join(format!("out-{}", rand_name()));
    let mut cmd = vidpipe();
    cmd.current_dir(dir);
    if let Some(yaml) = config {
        std::fs::write(dir.join("vidpipe.yaml"), yaml).expect("write config");
    } else {
        let _ = std::fs::remove_file(dir.join("vidpipe.yaml"));
    }
    if let Some(v) = env {
        cmd.env("VIDPIPE_SEGMENT_DURATION", v);
    }
    cmd.args(["transcode-hls", "clip.mp4", "-o"])
        .arg(&out)
        .args(["--preset", "ultrafast", "-q"]);
    if let Some(f) = flag {
        cmd.args(["--segment-duration", f]);
    }
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    media_entries(&out.join("clip/240p/index.m3u8"))[0].duration
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

#[test]
fn flags_beat_environment_beat_config_file_beat_defaults() {
    let tmp = tempfile::tempdir().expect("tempdir");
    make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(426, 240, 7.0));
    let yaml = "transcode-hls:\n  segment-duration: 2s\n";
    assert_eq!(segment_duration_used(tmp.path(), None, None, None), 6.0);
    assert_eq!(
        segment_duration_used(tmp.path(), Some(yaml), None, None),
        2.0
    );
    assert_eq!(
        segment_duration_used(tmp.path(), Some(yaml), Some("3"), None),
        3.0
    );
    assert_eq!(
        segment_duration_used(tmp.path(), Some(yaml), Some("3"), Some("4s")),
        4.0
    );
}

/// Runs transcode-hls with a config file holding `yaml`; returns the exit
/// code, stderr and the config path.
fn with_config(yaml: &str) -> (Option<i32>, String, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("custom.yaml");
    std::fs::write(&cfg, yaml).expect("write config");
    let o = run(vidpipe()
        .arg("--config")
        .arg(&cfg)
        .args(["transcode-hls", "fixtures/sample.mp4", "-o"])
        .arg(tmp.path()));
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        cfg,
    )
}

#[test]
fn unknown_config_key_is_a_usage_error_naming_key_and_line() {
    let (code, stderr, cfg) =
        with_config("progress: none\ntranscode-hls:\n  preset: fast\n  segment-lenght: 4\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4:", cfg.display())),
        "{stderr}"
    );
    assert!(stderr.contains("segment-lenght"), "{stderr}");
}

#[test]
fn bad_config_value_names_key_and_line() {
    let (code, stderr, _) = with_config("transcode-hls:\n  preset: fast\n  ladder: 720:lots\n");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(":3: transcode-hls.ladder"), "{stderr}");
}

#[test]
fn bad_environment_value_is_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = run(vidpipe()
        .env("VIDPIPE_PRESET", "warp-speed")
        .args(["transcode-hls", "fixtures/sample.mp4", "-o"])
        .arg(tmp.path()));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr.contains("VIDPIPE_PRESET") && stderr.contains("warp-speed"),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let o = run(vidpipe().args([
        "--config",
        "/no/such/vidpipe.yaml",
        "probe",
        "fixtures/sample.mp4",
    ]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/vidpipe.yaml"));
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let o = run(vidpipe().args(["transcode-hls", "--no-such-flag"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bundled_sample_publishes_with_defaults() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = run(vidpipe()
        .args(["transcode-hls", "fixtures/sample.mp4", "-o"])
        .arg(tmp.path()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("sample/master.m3u8"),
        "the result's location is shown: {stderr}"
    );
    check_package(&tmp.path().join("sample"), &Expect::bundled_sample());
}

/// Every subcommand, with arguments that would write to `s3://media/...`
/// (and what it needs in `dir`).
fn every_subcommand(dir: &std::path::Path) -> Vec<(&'static str, Vec<String>)> {
    let srt = dir.join("talk.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:02,000\nhello\n").expect("write srt");
    let script = dir.join("lines.yaml");
    std::fs::write(&script, "- at: 1\n  text: hello\n").expect("write script");
    let blob = dir.join("blob.bin");
    std::fs::write(&blob, b"twelve bytes").expect("write blob");
    let path = |p: &PathBuf| p.to_str().expect("utf8").to_string();
    vec![
        (
            "transcode-hls",
            vec![
                "fixtures/sample.mp4".into(),
                "-o".into(),
                "s3://media/hls".into(),
            ],
        ),
        (
            "upload-chunked",
            vec![path(&blob), "s3://media/up/blob.bin".into()],
        ),
        (
            "captions",
            vec![path(&srt), "-o".into(), "s3://media/subs".into()],
        ),
        (
            "commentary",
            vec![
                "fixtures/sample.mp4".into(),
                "--script".into(),
                path(&script),
                "--tts-cmd".into(),
                "false {text} {out}".into(),
                "-o".into(),
                "s3://media/commentary".into(),
            ],
        ),
    ]
}

#[test]
fn the_same_failure_exits_the_same_in_every_subcommand() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut table = every_subcommand(tmp.path());
    table.push(("probe", vec!["fixtures/sample.mp4".into()]));
    for (name, args) in &table {
        // The same bad global flag: a usage error (2) before any work.
        let o = run(vidpipe()
            .args(["--endpoint-url", "not a url"])
            .arg(name)
            .args(args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains("--endpoint-url: "), "{name}: {stderr}");

        // The same bad config value: a usage error naming file, line, key.
        let cfg = tmp.path().join("bad.yaml");
        std::fs::write(&cfg, "progress: sometimes\n").expect("write config");
        let o = run(vidpipe().arg("--config").arg(&cfg).arg(name).args(args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("bad.yaml:1: progress: "),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn an_unreachable_s3_server_exits_1_in_every_subcommand() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Nothing listens on a port we bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    for (name, args) in every_subcommand(tmp.path()) {
        let o = run(vidpipe()
            .env("AWS_ACCESS_KEY_ID", "GK0000000000000000000000")
            .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64))
            .env("AWS_REGION", "garage")
            .env("XDG_STATE_HOME", tmp.path().join("state"))
            .env("VIDPIPE_RETRY_FOR", "1s")
            .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")])
            .arg(name)
            .args(&args));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("error: "), "{name}: {stderr}");
        assert!(
            !stderr.contains(&"0".repeat(64)),
            "{name}: the secret leaked: {stderr}"
        );
    }
}
