//! `vidpipe captions`: VOD packages checked file by file, attached to a
//! real transcode-hls master and read back by ffprobe/ffmpeg; bad
//! transcripts; live `--follow` against a local directory and a real Garage
//! server, synchronised on the `tick` events the run prints.

mod common;

use common::garage::Garage;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write transcript");
    path.to_path_buf()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open transcript");
    // One write, so a tick sees the block whole or not at all.
    file.write_all(text.as_bytes()).expect("append");
}

fn srt_cue(n: u32, start: &str, end: &str, text: &str) -> String {
    format!("{n}\n00:{start},000 --> 00:{end},000\n{text}\n\n")
}

fn vtt_cue(start: &str, end: &str, text: &str) -> String {
    format!("00:{start}.000 --> 00:{end}.000\n{text}\n\n")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Cue timing lines of a WebVTT segment.
fn timings(segment: &str) -> Vec<String> {
    segment
        .lines()
        .filter(|l| l.contains("-->"))
        .map(str::to_string)
        .collect()
}

#[test]
fn vod_package_with_translations_attached_to_a_transcoded_master() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let clip = make_clip(dir, "talk.mp4", &ClipSpec::new(320, 240, 6.0));
    let o = run(vidpipe()
        .arg("transcode-hls")
        .arg(&clip)
        .arg("-o")
        .arg(dir.join("hls"))
        .args(["--preset", "ultrafast", "--segment-duration", "2", "-q"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let master = dir.join("hls/talk/master.m3u8");

    let en = write(
        &dir.join("talk.en.srt"),
        &[
            srt_cue(1, "00:01", "00:05", "Fish & chips <i>now</i>"),
            srt_cue(2, "00:05", "00:06", "a <tag> b"),
        ]
        .concat(),
    );
    let fr = write(
        &dir.join("fr.vtt"),
        &format!(
            "WEBVTT\n\nSTYLE\n::cue {{ color: yellow }}\n\nid-1\n00:00:01.000 --> 00:00:05.000 line:0\nPoisson &amp; frites\nsur deux lignes\n\n{}",
            vtt_cue("00:05", "00:06", "b")
        ),
    );
    let de = write(
        &dir.join("talk.de.json"),
        r#"[{"start": 1.0, "end": 5.0, "text": "Fisch & Pommes"}, {"start": 5.0, "end": 6.0, "text": "b"}]"#,
    );
    let out = dir.join("hls/talk/subs");
    let captions = |extra: &[&str]| {
        run(vidpipe()
            .arg("captions")
            .arg(&en)
            .arg(format!("fr={}", fr.display()))
            .arg(&de)
            .arg("-o")
            .arg(&out)
            .arg("--master")
            .arg(&master)
            .args(["--progress", "json"])
            .args(extra))
    };
    let o = captions(&["--duration", "6"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = events(&o.stdout);
    let written = events
        .iter()
        .filter(|e| e["event"] == "segment_written")
        .count();
    assert_eq!(written, 3 * 2, "two 4 s segments per language: {events:?}");
    let done = events.last().expect("events");
    assert_eq!(done["event"], "done");
    assert_eq!(done["languages"], serde_json::json!(["en", "fr", "de"]));

    // Segments: header, the boundary-crossing cue in both with the same
    // times and identifier, escaping, the STYLE block in every segment.
    for (lang, prefix) in [
        ("en", "captions"),
        ("fr", "captions-fr"),
        ("de", "captions-de"),
    ] {
        let playlist = read(&out.join(format!("{prefix}.m3u8")));
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"),
            "{lang}: {playlist}"
        );
        assert!(
            playlist.trim_end().ends_with("#EXT-X-ENDLIST"),
            "{lang}: {playlist}"
        );
        let entries = media_entries(&out.join(format!("{prefix}.m3u8")));
        let durations: Vec<f64> = entries.iter().map(|e| e.duration).collect();
        assert_eq!(durations, vec![4.0, 2.0], "{lang}");
        assert!(target_duration(&out.join(format!("{prefix}.m3u8"))) >= 4);
        let first = read(&out.join(format!("{prefix}-0.vtt")));
        let second = read(&out.join(format!("{prefix}-1.vtt")));
        for segment in [&first, &second] {
            let mut lines = segment.lines();
            assert_eq!(lines.next(), Some("WEBVTT"));
            assert_eq!(
                lines.next(),
                Some("X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000")
            );
            assert_eq!(lines.next(), Some(""));
        }
        assert_eq!(timings(&first).len(), 1, "{lang}: {first}");
        assert_eq!(timings(&second).len(), 2, "{lang}: {second}");
        assert_eq!(timings(&first)[0], timings(&second)[0]);
        let id_before = |s: &str| {
            let lines: Vec<&str> = s.lines().collect();
            let at = lines.iter().position(|l| l.contains("-->")).expect("cue");
            lines[at - 1].to_string()
        };
        assert_eq!(id_before(&first), id_before(&second), "{lang}");
    }
    let en0 = read(&out.join("captions-0.vtt"));
    assert!(en0.contains("Fish &amp; chips <i>now</i>"), "{en0}");
    assert!(read(&out.join("captions-1.vtt")).contains("a &lt;tag&gt; b"));
    let fr1 = read(&out.join("captions-fr-1.vtt"));
    assert!(fr1.contains("STYLE\n::cue { color: yellow }"), "{fr1}");
    assert!(
        fr1.contains(
            "id-1\n00:00:01.000 --> 00:00:05.000 line:0\nPoisson &amp; frites\nsur deux lignes"
        ),
        "{fr1}"
    );

    // The master: one subtitle group, the original DEFAULT, every variant
    // pointing at it; a second run changes nothing.
    let text = read(&master);
    let media: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .collect();
    assert_eq!(media.len(), 3, "{text}");
    assert!(
        media[0].contains("LANGUAGE=\"en\"")
            && media[0].contains("DEFAULT=YES")
            && media[0].contains("AUTOSELECT=YES")
            && media[0].contains("URI=\"subs/captions.m3u8\""),
        "{text}"
    );
    assert!(
        media[1].contains("LANGUAGE=\"fr\"")
            && media[1].contains("DEFAULT=NO")
            && media[1].contains("URI=\"subs/captions-fr.m3u8\""),
        "{text}"
    );
    let names: std::collections::HashSet<String> = media
        .iter()
        .map(|l| attributes(l.trim_start_matches("#EXT-X-MEDIA:"))["NAME"].clone())
        .collect();
    assert_eq!(names.len(), 3, "NAME must be unique: {text}");
    let variants = variants(&master);
    assert!(!variants.is_empty());
    for v in &variants {
        assert_eq!(v.attrs["SUBTITLES"], "subs", "{text}");
    }
    let o = captions(&["--duration", "6"]);
    assert!(o.status.success());
    assert_eq!(read(&master), text, "a second run changed the master");

    // ffprobe reads the master with its subtitle renditions (its HLS
    // demuxer needs -strict experimental for them) in their languages,
    // and ffmpeg extracts each cue once, with its time.
    let probe = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-strict",
            "experimental",
            "-show_entries",
            "stream=codec_type,codec_name:stream_tags=language",
            "-of",
            "json",
        ])
        .arg(&master));
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let streams: Value = serde_json::from_slice(&probe.stdout).expect("ffprobe json");
    let subtitles: Vec<(String, String)> = streams["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|s| s["codec_type"] == "subtitle")
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or("").to_string(),
                s["tags"]["language"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        subtitles,
        vec![
            ("webvtt".into(), "en".into()),
            ("webvtt".into(), "fr".into()),
            ("webvtt".into(), "de".into())
        ]
    );
    let packets = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-strict",
            "experimental",
            "-show_entries",
            "packet=stream_index,pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(&master));
    let packets: Value = serde_json::from_slice(&packets.stdout).expect("ffprobe json");
    // German: FFmpeg 5.1's WebVTT reader stops at a STYLE block (valid
    // WebVTT, which hls.js reads), so the French track cannot be used here.
    let german = streams["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .position(|s| s["tags"]["language"] == "de")
        .expect("German stream");
    let times: Vec<(String, String)> = packets["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter(|p| p["stream_index"] == german)
        .map(|p| {
            (
                p["pts_time"].as_str().unwrap_or("").to_string(),
                p["duration_time"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        times,
        vec![
            ("1.000000".into(), "4.000000".into()),
            ("5.000000".into(), "1.000000".into())
        ],
        "each German cue once, at its own time"
    );
    // The timestamp map's MPEGTS is where the renditions' video starts.
    let rendition = master.parent().expect("dir").join(&variants[0].uri);
    let video = media_entries(&rendition);
    let (pts, _) = first_video_packet(&rendition.parent().expect("dir").join(&video[0].uri));
    assert!(
        (pts - 900_000.0 / 90_000.0).abs() < 1e-6,
        "video starts at {pts}"
    );
}

#[test]
fn base_url_segment_duration_and_mpegts_offset() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let en = write(
        &tmp.path().join("a.srt"),
        &srt_cue(1, "00:01", "00:13", "long"),
    );
    let out = tmp.path().join("out");
    let o = run(vidpipe()
        .arg("captions")
        .arg(&en)
        .arg("-o")
        .arg(&out)
        .args([
            "--segment-duration",
            "6",
            "--mpegts-offset",
            "0",
            "--base-url",
            "https://cdn.example/talk",
        ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let playlist = read(&out.join("captions.m3u8"));
    assert!(playlist.contains("#EXT-X-TARGETDURATION:6\n"), "{playlist}");
    assert!(
        playlist.contains("#EXTINF:1.000,\nhttps://cdn.example/talk/captions-2.vtt\n"),
        "{playlist}"
    );
    let segment = read(&out.join("captions-2.vtt"));
    assert!(segment.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n1\n00:00:01.000 --> 00:00:13.000\nlong\n"), "{segment}");
}

#[test]
fn bad_transcripts_are_named_with_their_line_and_the_rest_is_published() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let good = write(
        &dir.join("talk.en.srt"),
        &srt_cue(1, "00:01", "00:02", "fine"),
    );
    let cases = [
        ("talk.fr.srt", "1\n00:00:01,000 --> 00:00:0x,000\nbroken\n".as_bytes(), "talk.fr.srt: line 2: malformed timestamp"),
        ("talk.de.srt", b"1\n00:00:05,000 --> 00:00:04,000\nbackwards\n", "talk.de.srt: line 2: the cue ends (00:00:04.000) before it starts"),
        ("talk.es.srt", b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xE9\n", "talk.es.srt: line 3: byte 0xE9 at column 4 is not UTF-8"),
        ("talk.it.srt", b"", "talk.it.srt: line 1: the file is empty"),
        ("talk.nl.vtt", b"00:01.000 --> 00:02.000\nno header\n", "talk.nl.vtt: line 1: not a WebVTT file"),
        ("talk.pt.json", b"[{\"start\": 1, \"end\": 2, \"text\": \"a\"},\n {\"start\": 2, \"text\": \"no end\"}]", "talk.pt.json: line 2: not a JSON array"),
        ("talk.ja.txt", b"hello", "talk.ja.txt: line 1: unknown transcript format `.txt`"),
    ];
    let mut cmd = vidpipe();
    cmd.arg("captions").arg(&good);
    for (name, bytes, _) in &cases {
        std::fs::write(dir.join(name), bytes).expect("write");
        cmd.arg(dir.join(name));
    }
    cmd.arg(dir.join("talk.ko.srt")); // missing
    let out = dir.join("out");
    let o = run(cmd.arg("-o").arg(&out));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    for (_, _, message) in &cases {
        assert!(
            stderr.contains(message),
            "expected `{message}` in:\n{stderr}"
        );
    }
    assert!(stderr.contains("talk.ko.srt: No such file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut files: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec!["captions-0.vtt", "captions.m3u8"],
        "only the good language, nothing half-written"
    );

    // Repairable problems: a warning, and the cues come out right.
    let messy = dir.join("messy.srt");
    std::fs::write(&messy, "\u{FEFF}2\r\n00:00:05,000 --> 00:00:06,000\r\nsecond\r\n1\r\n00:00:01,000 --> 00:00:02,000\r\nfirst\r\n").expect("write");
    let o = run(vidpipe()
        .arg("captions")
        .arg(&messy)
        .arg("-o")
        .arg(dir.join("messy")));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    for warning in [
        "byte order mark",
        "CRLF",
        "line 4: missing blank line",
        "not in time order",
    ] {
        assert!(
            stderr.contains(&format!("warning: {}", messy.display())) && stderr.contains(warning),
            "expected `{warning}` in:\n{stderr}"
        );
    }
    let segment = read(&dir.join("messy/captions-0.vtt"));
    assert!(
        segment.contains("1\n00:00:01.000 --> 00:00:02.000\nfirst\n"),
        "{segment}"
    );
    assert!(read(&dir.join("messy/captions-1.vtt"))
        .contains("2\n00:00:05.000 --> 00:00:06.000\nsecond\n"));

    // Usage errors: exit 2 before anything is written.
    for (args, message) in [
        (vec!["en_GB=a.srt"], "did you mean en-GB"),
        (vec!["a.srt", "b.srt"], "a translation needs a language"),
        (vec!["en=a.srt", "en=b.srt"], "language en is already used"),
    ] {
        let o = run(vidpipe()
            .arg("captions")
            .args(&args)
            .arg("-o")
            .arg(dir.join("usage")));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(!dir.join("usage").exists());
}

/// A `captions --follow` process and its events, read as they come.
struct Live {
    child: Child,
    events: Receiver<Value>,
}

impl Live {
    fn start(cmd: &mut Command) -> Live {
        let mut child = cmd
            .args(["--follow", "--interval", "0.1s", "--progress", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vidpipe");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Live { child, events: rx }
    }

    /// Events up to and including the next `tick`.
    fn tick(&self) -> (Value, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            let event = self
                .events
                .recv_timeout(Duration::from_secs(60))
                .expect("no tick event within 60 s");
            if event["event"] == "tick" {
                return (event, seen);
            }
            seen.push(event);
        }
    }

    /// Ticks until `segments` new segments have been written; the events
    /// of those ticks, and the objects they stored.
    fn until_segments(&self, segments: u64) -> (Vec<Value>, u64) {
        let (mut all, mut written, mut objects) = (Vec::new(), 0, 0);
        for _ in 0..100 {
            let (tick, events) = self.tick();
            written += tick["segments"].as_u64().expect("segments");
            objects += tick["objects"].as_u64().expect("objects");
            all.extend(events);
            if written >= segments {
                assert_eq!(written, segments, "more segments than expected: {all:?}");
                return (all, objects);
            }
        }
        panic!("only {written} of {segments} segments after 100 ticks: {all:?}");
    }

    /// SIGTERM: the run stops with exit code 130.
    fn terminate(mut self) {
        let sent = run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        assert!(sent.status.success());
        let status = self.child.wait().expect("wait");
        assert_eq!(status.code(), Some(130));
    }

    fn wait(mut self) -> std::process::ExitStatus {
        while self.events.recv_timeout(Duration::from_secs(60)).is_ok() {}
        self.child.wait().expect("wait")
    }
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .ino()
}

fn playlist_window(text: &str) -> (u64, Vec<String>) {
    let sequence = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .expect("media sequence")
        .parse()
        .expect("number");
    let uris = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (sequence, uris)
}

#[test]
fn follow_publishes_only_new_segments_slides_the_window_and_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let en = write(
        &dir.join("live.en.srt"),
        &[
            srt_cue(1, "00:00", "00:01", "one"),
            srt_cue(2, "00:02", "00:03", "two"),
        ]
        .concat(),
    );
    let fr = write(
        &dir.join("live.fr.vtt"),
        &format!(
            "WEBVTT\n\n{}{}",
            vtt_cue("00:00", "00:01", "un"),
            vtt_cue("00:02", "00:03", "deux")
        ),
    );
    let out = dir.join("out");
    let command = || {
        let mut cmd = vidpipe();
        cmd.arg("captions")
            .arg(&en)
            .arg(&fr)
            .arg("-o")
            .arg(&out)
            .args(["--segment-duration", "2", "--window", "3"]);
        cmd
    };
    let live = Live::start(&mut command());
    // A cue starting at 2 s closes segment 0 ([0, 2)) and nothing more.
    let (events, objects) = live.until_segments(2);
    assert_eq!(objects, 4, "2 segments + 2 playlists: {events:?}");
    assert!(out.join("captions-0.vtt").exists() && out.join("captions-fr-0.vtt").exists());
    assert!(
        !out.join("captions-1.vtt").exists(),
        "segment 1 is still open"
    );
    let playlist = read(&out.join("captions.m3u8"));
    assert!(
        !playlist.contains("PLAYLIST-TYPE") && !playlist.contains("ENDLIST"),
        "{playlist}"
    );
    assert_eq!(
        playlist_window(&playlist),
        (0, vec!["captions-0.vtt".into()])
    );
    let first = (
        inode(&out.join("captions-0.vtt")),
        inode(&out.join("captions-fr-0.vtt")),
    );

    // Idle ticks store nothing.
    let (tick, _) = live.tick();
    assert_eq!(tick["objects"], 0, "{tick}");

    // A cue across the 6 s boundary and one at 9 s close segments 1..=3.
    append(
        &en,
        &[
            srt_cue(3, "00:05", "00:07", "across"),
            srt_cue(4, "00:09", "00:10", "four"),
        ]
        .concat(),
    );
    append(
        &fr,
        &[
            vtt_cue("00:05", "00:07", "à cheval"),
            vtt_cue("00:09", "00:10", "quatre"),
        ]
        .concat(),
    );
    let (events, objects) = live.until_segments(6);
    let written: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "segment_written")
        .map(|e| format!("{}-{}", e["rendition"].as_str().unwrap_or(""), e["index"]))
        .collect();
    let mut sorted = written.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["en-1", "en-2", "en-3", "fr-1", "fr-2", "fr-3"],
        "exactly the new segments"
    );
    assert!(
        (6 + 2..=6 + 4).contains(&objects),
        "segments plus changed playlists, got {objects}"
    );
    assert_eq!(
        first,
        (
            inode(&out.join("captions-0.vtt")),
            inode(&out.join("captions-fr-0.vtt"))
        ),
        "old segments were rewritten"
    );
    assert_eq!(
        timings(&read(&out.join("captions-2.vtt"))),
        timings(&read(&out.join("captions-3.vtt")))
    );
    // Window of 3: segment 0 dropped, media sequence 1.
    let (sequence, uris) = playlist_window(&read(&out.join("captions-fr.m3u8")));
    assert_eq!(
        (sequence, uris),
        (
            1,
            vec![
                "captions-fr-1.vtt".into(),
                "captions-fr-2.vtt".into(),
                "captions-fr-3.vtt".into()
            ]
        )
    );
    live.terminate();
    let state = out.join(".vidpipe/captions-live.json");
    assert!(state.exists(), "state file kept");

    // Restart: nothing stored again, then it goes on from segment 4.
    let inodes: Vec<u64> = (0..4)
        .map(|i| inode(&out.join(format!("captions-{i}.vtt"))))
        .collect();
    let live = Live::start(&mut command());
    let (tick, events) = live.tick();
    assert_eq!(
        tick["objects"], 0,
        "restart re-stored something: {events:?}"
    );
    append(&en, &srt_cue(5, "00:12", "00:13", "five"));
    append(&fr, &vtt_cue("00:12", "00:13", "cinq"));
    live.until_segments(4);
    assert_eq!(
        inodes,
        (0..4)
            .map(|i| inode(&out.join(format!("captions-{i}.vtt"))))
            .collect::<Vec<_>>()
    );
    let (sequence, uris) = playlist_window(&read(&out.join("captions.m3u8")));
    assert_eq!((sequence, uris.len()), (3, 3));
    // The producer declares the end: the rest is published, ENDLIST, exit 0.
    std::fs::write(dir.join("live.en.srt.end"), "").expect("marker");
    std::fs::write(dir.join("live.fr.vtt.end"), "").expect("marker");
    let status = live.wait();
    assert!(status.success(), "{status:?}");
    let playlist = read(&out.join("captions.m3u8"));
    assert!(
        playlist.trim_end().ends_with("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    assert!(!playlist.contains("PLAYLIST-TYPE"), "{playlist}");
    assert!(
        playlist.contains("#EXTINF:1.000,\ncaptions-6.vtt"),
        "last segment ends with the last cue: {playlist}"
    );
    assert_eq!(playlist_window(&playlist).0, 4);
}

#[test]
fn a_damaged_live_state_is_kept_aside_with_a_warning_and_the_run_starts_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let en = write(
        &dir.join("talk.en.srt"),
        &[
            srt_cue(1, "00:00", "00:01", "one"),
            srt_cue(2, "00:02", "00:03", "two"),
        ]
        .concat(),
    );
    let out = dir.join("out");
    let state = out.join(".vidpipe/captions-live.json");
    std::fs::create_dir_all(state.parent().expect("parent")).expect("mkdir");
    let garbage = b"{\"version\": 1, \"segm";
    std::fs::write(&state, garbage).expect("write");
    let live = Live::start(
        vidpipe()
            .arg("captions")
            .arg(&en)
            .arg("-o")
            .arg(&out)
            .args(["--segment-duration", "2"]),
    );
    let (events, _) = live.until_segments(1);
    let warning = events
        .iter()
        .find(|e| e["event"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {events:?}"));
    assert!(
        warning["message"]
            .as_str()
            .unwrap_or("")
            .contains("captions-live.json.damaged"),
        "{warning}"
    );
    assert!(out.join("captions-0.vtt").exists(), "started over");
    live.terminate();
    let kept = out.join(".vidpipe/captions-live.json.damaged");
    assert_eq!(std::fs::read(&kept).expect("damaged copy"), garbage);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("new state parses");
    assert_eq!(saved["languages"]["en"]["published"], 1, "{saved}");
}

#[test]
fn a_failing_language_is_retried_while_the_others_go_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let en = write(
        &dir.join("x.en.srt"),
        &[
            srt_cue(1, "00:00", "00:01", "one"),
            srt_cue(2, "00:04", "00:05", "two"),
        ]
        .concat(),
    );
    let de = write(
        &dir.join("x.de.srt"),
        "1\n00:00:00,000 --> 00:00:0x,000\nbroken\n\n",
    );
    let out = dir.join("out");
    let live = Live::start(
        vidpipe()
            .arg("captions")
            .arg(&en)
            .arg(&de)
            .arg("-o")
            .arg(&out)
            .args(["--segment-duration", "2"]),
    );
    let (events, _) = live.until_segments(2);
    let error = events
        .iter()
        .find(|e| e["event"] == "error")
        .expect("error event");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("x.de.srt:2: malformed timestamp"),
        "{error}"
    );
    assert!(out.join("captions-1.vtt").exists() && !out.join("captions-de-0.vtt").exists());
    // Fixed: German catches up on a later tick.
    write(
        &de,
        &[
            srt_cue(1, "00:00", "00:01", "eins"),
            srt_cue(2, "00:04", "00:05", "zwei"),
        ]
        .concat(),
    );
    live.until_segments(2);
    assert!(out.join("captions-de-1.vtt").exists());
    live.terminate();
    // --finish ends the playlists and exits 0.
    let status = Live::start(
        vidpipe()
            .arg("captions")
            .arg(&en)
            .arg(&de)
            .arg("-o")
            .arg(&out)
            .args(["--segment-duration", "2", "--finish"]),
    )
    .wait();
    assert!(status.success());
    assert!(read(&out.join("captions-de.m3u8")).contains("#EXT-X-ENDLIST"));
}

#[test]
fn follow_uploads_to_garage_only_what_is_new_and_resumes_on_another_machine() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let en = write(
        &dir.join("s3.en.vtt"),
        &format!(
            "WEBVTT\n\n{}{}",
            vtt_cue("00:00", "00:01", "one"),
            vtt_cue("00:04", "00:05", "two")
        ),
    );
    let dest = format!("s3://{}/live/talk", garage.bucket);
    // Each machine has its own state directory: the live state is beside
    // the output in the bucket.
    let command = |machine: &str| {
        let mut cmd = vidpipe();
        garage.env(&mut cmd);
        cmd.env("XDG_STATE_HOME", dir.join(machine))
            .arg("captions")
            .arg(&en)
            .args(["-o", &dest, "--segment-duration", "2"]);
        cmd
    };
    let published = || -> Vec<String> {
        garage
            .keys("live/talk/")
            .into_iter()
            .filter(|k| !k.contains("/.vidpipe/"))
            .collect()
    };
    let live = Live::start(&mut command("first"));
    let (_, objects) = live.until_segments(2);
    assert_eq!(objects, 3);
    assert_eq!(
        published(),
        vec![
            "live/talk/captions-0.vtt",
            "live/talk/captions-1.vtt",
            "live/talk/captions.m3u8"
        ]
    );
    append(&en, &vtt_cue("00:08", "00:09", "three"));
    let (events, objects) = live.until_segments(2);
    assert_eq!(objects, 3, "two new segments and the playlist: {events:?}");
    assert_eq!(published().len(), 5);
    let playlist = String::from_utf8(garage.get("live/talk/captions.m3u8")).expect("utf-8");
    assert_eq!(
        playlist_window(&playlist),
        (0, (0..4).map(|i| format!("captions-{i}.vtt")).collect())
    );
    live.terminate();
    assert!(garage
        .keys("live/talk/.vidpipe/")
        .contains(&"live/talk/.vidpipe/captions-live.json".to_string()));

    let live = Live::start(&mut command("second"));
    let (tick, events) = live.tick();
    assert_eq!(tick["objects"], 0, "restart re-uploaded: {events:?}");
    live.terminate();
    let status = Live::start(command("third").arg("--finish")).wait();
    assert!(status.success());
    let playlist = String::from_utf8(garage.get("live/talk/captions.m3u8")).expect("utf-8");
    assert!(
        playlist.trim_end().ends_with("#EXT-X-ENDLIST"),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXTINF:1.000,\ncaptions-4.vtt"),
        "{playlist}"
    );
    let last = String::from_utf8(garage.get("live/talk/captions-4.vtt")).expect("utf-8");
    assert!(
        last.contains("00:00:08.000 --> 00:00:09.000\nthree"),
        "{last}"
    );
}

#[test]
fn vod_to_garage_with_a_master_in_the_bucket() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let en = write(
        &tmp.path().join("talk.en.srt"),
        &srt_cue(1, "00:01", "00:05", "hello"),
    );
    let es = write(
        &tmp.path().join("talk.es.srt"),
        &srt_cue(1, "00:01", "00:05", "hola"),
    );
    let master =
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n";
    garage.put("vod/talk/master.m3u8", master.as_bytes().to_vec());
    let captions = || {
        let mut cmd = vidpipe();
        garage.env(&mut cmd);
        run(cmd
            .arg("captions")
            .arg(&en)
            .arg(&es)
            .arg("-o")
            .arg(format!("s3://{}/vod/talk/subs", garage.bucket))
            .arg("--master")
            .arg(format!("s3://{}/vod/talk/master.m3u8", garage.bucket)))
    };
    let o = captions();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut keys = garage.keys("vod/talk/");
    keys.sort();
    assert_eq!(
        keys,
        [
            "master.m3u8",
            "subs/captions-0.vtt",
            "subs/captions-1.vtt",
            "subs/captions-es-0.vtt",
            "subs/captions-es-1.vtt",
            "subs/captions-es.m3u8",
            "subs/captions.m3u8",
        ]
        .map(|k| format!("vod/talk/{k}"))
    );
    let text = String::from_utf8(garage.get("vod/talk/master.m3u8")).expect("utf-8");
    assert!(text.contains("LANGUAGE=\"es\",NAME=\"Spanish\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs/captions-es.m3u8\""), "{text}");
    assert!(
        text.contains("RESOLUTION=640x360,SUBTITLES=\"subs\"\n360p/index.m3u8"),
        "{text}"
    );
    assert!(captions().status.success());
    assert_eq!(
        String::from_utf8(garage.get("vod/talk/master.m3u8")).expect("utf-8"),
        text
    );
    let segment = String::from_utf8(garage.get("vod/talk/subs/captions-es-1.vtt")).expect("utf-8");
    assert!(
        segment.contains("00:00:01.000 --> 00:00:05.000\nhola"),
        "{segment}"
    );
}

/// Issue: re-running transcode-hls after `captions --master` removed the
/// subtitle group. A re-run with nothing to encode leaves the master
/// byte-identical and untouched; one that rewrites it (other settings)
/// keeps the group.
#[test]
fn transcode_re_runs_keep_the_subtitles_captions_attached() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let clip = make_clip(dir, "talk.mp4", &ClipSpec::new(320, 240, 4.0));
    let transcode = |ladder: &str| {
        let o = run(vidpipe()
            .arg("transcode-hls")
            .arg(&clip)
            .arg("-o")
            .arg(dir.join("hls"))
            .args(["--preset", "ultrafast", "--segment-duration", "2", "-q"])
            .args(["--ladder", ladder]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    transcode("240:400k,180:200k");
    let master = dir.join("hls/talk/master.m3u8");
    let en = write(
        &dir.join("talk.en.srt"),
        &srt_cue(1, "00:01", "00:03", "hello"),
    );
    let o = run(vidpipe()
        .arg("captions")
        .arg(&en)
        .arg("-o")
        .arg(dir.join("hls/talk/subs"))
        .arg("--master")
        .arg(&master));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let attached = read(&master);
    let group = "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\"";
    assert!(attached.contains(group), "{attached}");

    // Nothing to encode: the master is not written at all.
    let before = std::fs::metadata(&master).expect("master");
    let before_inode = inode(&master);
    transcode("240:400k,180:200k");
    assert_eq!(read(&master), attached);
    let after = std::fs::metadata(&master).expect("master");
    assert_eq!(inode(&master), before_inode);
    assert_eq!(
        after.modified().expect("mtime"),
        before.modified().expect("mtime")
    );

    // Other settings: a new master, with the subtitle group kept and every
    // variant pointing at it.
    transcode("240:400k");
    let rewritten = read(&master);
    assert_ne!(rewritten, attached);
    assert!(rewritten.contains(group), "{rewritten}");
    let variants: Vec<&str> = rewritten
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 1, "{rewritten}");
    assert!(
        variants.iter().all(|v| v.contains("SUBTITLES=\"subs\"")),
        "{rewritten}"
    );
}
