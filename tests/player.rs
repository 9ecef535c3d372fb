//! A real player: hls.js in headless Chromium plays vidpipe's output
//! (MPEG-TS and fMP4) from a local HTTP server to the end, with no errors,
//! and shows the subtitles `vidpipe captions` attached to it at their
//! times.
//!
//! Needs Chromium, Node.js and `npm ci --prefix tests/player` (all done by
//! `scripts/test`); fails loudly when they are missing.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{} is missing: {what} (run `bash scripts/test`, which installs it)",
        path.display()
    );
}

#[test]
fn hls_js_plays_ts_and_fmp4_output_to_the_end() {
    let player = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/player");
    let hls_js = player.join("node_modules/hls.js/dist/hls.min.js");
    require(&hls_js, "hls.js (npm ci --prefix tests/player)");
    require(
        Path::new("/usr/bin/chromium"),
        "Chromium (apt-get install chromium)",
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let www = tmp.path();
    std::fs::copy(player.join("play.html"), www.join("play.html")).expect("copy page");
    std::fs::copy(&hls_js, www.join("hls.min.js")).expect("copy hls.js");
    let clip = make_clip(www, "clip.mp4", &ClipSpec::new(640, 360, 5.0));
    let transcript = www.join("clip.srt");
    std::fs::write(
        &transcript,
        "1\n00:00:00,500 --> 00:00:02,500\nacross the first boundary\n\n2\n00:00:03,000 --> 00:00:04,000\nFish & chips\n",
    )
    .expect("write transcript");
    let translation = www.join("clip.fr.vtt");
    std::fs::write(
        &translation,
        "WEBVTT\n\nSTYLE\n::cue { color: yellow }\n\n00:00:00.500 --> 00:00:02.500\nà cheval\n\n00:00:03.000 --> 00:00:04.000\nPoisson &amp; frites\n",
    )
    .expect("write translation");
    for (dir, format) in [("ts", "ts"), ("fmp4", "fmp4")] {
        let o = run(vidpipe()
            .arg("transcode-hls")
            .arg(&clip)
            .arg("-o")
            .arg(www.join(dir))
            .args([
                // The default preset: B-frames, whose reorder delay must not
                // show as a gap at the start.
                "--segment-duration",
                "2",
                "--segment-format",
                format,
                "-q",
            ]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = run(vidpipe()
            .arg("captions")
            .arg(format!("en={}", transcript.display()))
            .arg(format!("fr={}", translation.display()))
            .arg("-o")
            .arg(www.join(dir).join("clip/subs"))
            .arg("--master")
            .arg(www.join(dir).join("clip/master.m3u8"))
            .args(["--segment-duration", "2", "-q"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    let server = HttpServer::start(www);
    let page = format!("http://127.0.0.1:{}/play.html", server.port);
    let o = run(Command::new("node")
        .arg(player.join("play.js"))
        .arg(&page)
        .args(["ts/clip/master.m3u8", "fmp4/clip/master.m3u8"]));
    assert!(
        o.status.success(),
        "player failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let reports = events(&o.stdout);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r["timedOut"], false, "playback did not finish: {r}");
        let fatal: Vec<_> = r["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter(|e| e["fatal"] == true)
            .collect();
        assert!(fatal.is_empty(), "fatal player errors: {r}");
        // Audio and video start together at the start of the timeline:
        // no gap to jump, no stall.
        let jumps: Vec<_> = r["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter(|e| {
                let details = e["details"].as_str().unwrap_or("");
                [
                    "bufferSeekOverHole",
                    "bufferStalledError",
                    "bufferNudgeOnStall",
                ]
                .contains(&details)
            })
            .collect();
        assert!(jumps.is_empty(), "the player had to jump or stalled: {r}");
        for track in ["audio", "video"] {
            let start = r["starts"][track].as_f64().expect("buffer start");
            assert!(start.abs() < 0.001, "{track} starts at {start}: {r}");
        }
        assert_eq!(r["ended"], true, "{r}");
        let played = r["played"].as_f64().expect("played");
        assert!((played - 5.0).abs() < 0.3, "played {played} s of 5 s: {r}");
        let levels = r["levels"].as_array().expect("levels");
        assert_eq!(levels.len(), 2, "{r}");
        assert!(r["fragments"].as_u64() >= Some(3), "{r}");
        // Subtitles: both languages offered, the original selected, and
        // its cues at their transcript times on the video's timeline
        // (X-TIMESTAMP-MAP against the video's first PTS), each once.
        let tracks = r["subtitleTracks"].as_array().expect("subtitle tracks");
        let langs: Vec<&str> = tracks.iter().filter_map(|t| t["lang"].as_str()).collect();
        assert_eq!(langs, vec!["en", "fr"], "{r}");
        assert_eq!(tracks[0]["default"], true, "{r}");
        assert!(r["subtitleFragments"].as_u64() >= Some(2), "{r}");
        let cues: Vec<(f64, f64, &str)> = r["cues"]
            .as_array()
            .expect("cues")
            .iter()
            .filter(|c| c["lang"] == "en")
            .map(|c| {
                (
                    c["start"].as_f64().expect("start"),
                    c["end"].as_f64().expect("end"),
                    c["shown"].as_str().expect("shown text"),
                )
            })
            .collect();
        assert_eq!(cues.len(), 2, "each cue once: {r}");
        for ((start, end, text), (want_start, want_end, want_text)) in cues.iter().zip([
            (0.5, 2.5, "across the first boundary"),
            (3.0, 4.0, "Fish & chips"),
        ]) {
            assert!(
                (start - want_start).abs() < 0.05 && (end - want_end).abs() < 0.05,
                "cue `{text}` at {start}..{end}, expected {want_start}..{want_end}: {r}"
            );
            assert_eq!(*text, want_text);
        }
    }
}
