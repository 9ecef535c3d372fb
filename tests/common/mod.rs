//! Shared helpers for the integration tests: generated clips (the `ffmpeg`
//! program as an independent peer), the vidpipe binary, playlist parsing
//! and `ffprobe` checks.
#![allow(dead_code)]

pub mod faulty_proxy;
pub mod garage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// What a generated clip contains.
#[derive(Debug, Clone)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: f64,
    /// Audio channel layout (`stereo`, `5.1`), or none.
    pub audio: Option<&'static str>,
    /// Display rotation metadata in degrees.
    pub rotate: Option<u32>,
    /// Drop frames irregularly so timestamps are variable.
    pub variable_rate: bool,
}

impl ClipSpec {
    pub fn new(width: u32, height: u32, seconds: f64) -> Self {
        ClipSpec {
            width,
            height,
            fps: 25,
            seconds,
            audio: Some("stereo"),
            rotate: None,
            variable_rate: false,
        }
    }
}

/// Generates a clip with `testsrc2` (+ `sine`) using the ffmpeg CLI.
pub fn make_clip(dir: &Path, name: &str, spec: &ClipSpec) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            spec.width, spec.height, spec.fps, spec.seconds
        ));
    if let Some(layout) = spec.audio {
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={},aformat=channel_layouts={layout}",
            spec.seconds
        ));
    }
    if spec.variable_rate {
        cmd.args([
            "-vf",
            "select='not(eq(mod(n\\,10)\\,3))*not(eq(mod(n\\,7)\\,5))'",
            "-vsync",
            "vfr",
        ]);
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    if spec.audio.is_some() {
        cmd.args(["-c:a", "aac", "-b:a", "96k"]);
    }
    cmd.args(["-movflags", "+faststart"]);
    let encoded = match spec.rotate {
        Some(_) => dir.join(format!("unrotated-{name}")),
        None => path.clone(),
    };
    cmd.arg(&encoded);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "ffmpeg failed to make {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(r) = spec.rotate {
        // FFmpeg 5.1 stores rotation metadata only when stream-copying.
        let out = run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&encoded)
            .args(["-c", "copy", "-metadata:s:v:0", &format!("rotate={r}")])
            .arg(&path));
        assert!(
            out.status.success(),
            "ffmpeg failed to rotate {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path
}

/// One entry of a media playlist.
#[derive(Debug, Clone)]
pub struct Entry {
    pub duration: f64,
    pub uri: String,
    pub byterange: Option<(u64, u64)>,
}

/// Parses a media playlist's segments.
pub fn media_entries(path: &Path) -> Vec<Entry> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut entries = Vec::new();
    let mut duration = None;
    let mut byterange = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = Some(
                rest.trim_end_matches(',')
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .parse::<f64>()
                    .expect("EXTINF number"),
            );
        } else if let Some(rest) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = rest.split_once('@').expect("len@offset");
            byterange = Some((off.parse().expect("offset"), len.parse().expect("length")));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            entries.push(Entry {
                duration: duration.take().expect("EXTINF before URI"),
                uri: line.to_string(),
                byterange: byterange.take(),
            });
        }
    }
    entries
}

/// Value of `#EXT-X-TARGETDURATION`.
pub fn target_duration(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read playlist");
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .expect("TARGETDURATION")
        .parse()
        .expect("integer")
}

/// A variant of a master playlist.
#[derive(Debug, Clone)]
pub struct StreamInf {
    pub attrs: std::collections::HashMap<String, String>,
    pub uri: String,
}

/// Parses `#EXT-X-STREAM-INF` entries and their URIs.
pub fn variants(master: &Path) -> Vec<StreamInf> {
    let text = std::fs::read_to_string(master).expect("read master");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let uri = lines.next().expect("URI after STREAM-INF").to_string();
            out.push(StreamInf {
                attrs: attributes(rest),
                uri,
            });
        }
    }
    out
}

/// Parses an attribute list (`A=1,B="x,y"`).
pub fn attributes(list: &str) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').expect("KEY=VALUE");
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        map.insert(key.to_string(), value.to_string());
        rest = next;
    }
    map
}

/// ffprobe JSON for a file.
pub fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path));
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// The first video packet of a segment: (pts seconds, is keyframe).
pub fn first_video_packet(segment: &Path) -> (f64, bool) {
    let v = ffprobe(
        segment,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-read_intervals",
            "%+#1",
        ],
    );
    let p = &v["packets"][0];
    let pts: f64 = p["pts_time"]
        .as_str()
        .expect("pts_time")
        .parse()
        .expect("number");
    let key = p["flags"].as_str().unwrap_or("").starts_with('K');
    (pts, key)
}

/// Decodes everything the master playlist references; returns the number
/// of video frames decoded.
pub fn decode_master(master: &Path) -> u64 {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(master));
    assert!(
        out.status.success(),
        "ffprobe cannot read {}: {}",
        master.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let full = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(master)
        .args(["-map", "0", "-f", "null", "-"]));
    assert!(
        full.status.success(),
        "ffmpeg cannot decode {}: {}",
        master.display(),
        String::from_utf8_lossy(&full.stderr)
    );
    assert!(
        full.stderr.is_empty(),
        "decode errors in {}: {}",
        master.display(),
        String::from_utf8_lossy(&full.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Duration of a media file in seconds, from its container.
pub fn duration_of(path: &Path) -> f64 {
    let v = ffprobe(path, &["-show_entries", "format=duration"]);
    v["format"]["duration"]
        .as_str()
        .expect("duration")
        .parse()
        .expect("number")
}

/// NDJSON events from stdout.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// What a valid package looks like, checked against the source clip.
pub struct Expect {
    /// (width, height) of every video rendition, in master order.
    pub sizes: Vec<(u32, u32)>,
    pub audio: bool,
    /// Frames the source has after conversion to the output rate.
    pub frames: u64,
    pub fps: f64,
}

fn segment_path(dir: &Path, entry: &Entry) -> PathBuf {
    dir.join(&entry.uri)
}

impl Expect {
    /// What the bundled `fixtures/sample.mp4` (8 s, 720p30, audio) becomes.
    pub fn bundled_sample() -> Expect {
        Expect {
            sizes: vec![(1280, 720), (854, 480), (640, 360), (426, 240)],
            audio: true,
            frames: 240,
            fps: 30.0,
        }
    }

    /// What a 25 fps 854x480 clip with audio becomes: 480p, 360p and 240p.
    pub fn sd_clip(seconds: u64) -> Expect {
        Expect {
            sizes: vec![(854, 480), (640, 360), (428, 240)],
            audio: true,
            frames: seconds * 25,
            fps: 25.0,
        }
    }
}

pub fn check_package(root: &Path, expect: &Expect) {
    let master = root.join("master.m3u8");
    assert!(master.exists(), "no master playlist in {}", root.display());
    let master_text = std::fs::read_to_string(&master).expect("read master");
    assert!(master_text.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
    let vars = variants(&master);
    let sizes: Vec<(u32, u32)> = vars
        .iter()
        .map(|v| {
            let (w, h) = v.attrs["RESOLUTION"].split_once('x').expect("WxH");
            (w.parse().expect("w"), h.parse().expect("h"))
        })
        .collect();
    assert_eq!(sizes, expect.sizes, "renditions in {}", master.display());
    assert_eq!(
        master_text.contains("TYPE=AUDIO"),
        expect.audio,
        "audio group presence"
    );

    let audio_entries = expect
        .audio
        .then(|| media_entries(&root.join("audio/index.m3u8")));
    let mut starts: Vec<Vec<f64>> = Vec::new();
    for v in &vars {
        let playlist = root.join(&v.uri);
        let dir = playlist.parent().expect("dir").to_path_buf();
        let text = std::fs::read_to_string(&playlist).expect("media playlist");
        assert!(
            text.contains("#EXT-X-PLAYLIST-TYPE:VOD")
                && text.trim_end().ends_with("#EXT-X-ENDLIST")
        );
        let entries = media_entries(&playlist);
        assert!(!entries.is_empty());
        let target = target_duration(&playlist);
        assert!(
            entries.iter().all(|e| e.duration.round() as u64 <= target),
            "TARGETDURATION {target} too small"
        );

        // Sum of EXTINF matches the video within one frame.
        let total: f64 = entries.iter().map(|e| e.duration).sum();
        let expected = expect.frames as f64 / expect.fps;
        assert!(
            (total - expected).abs() <= 1.0 / expect.fps + 1e-6,
            "{}: EXTINF sum {total} vs {expected}",
            v.uri
        );

        // Every segment starts with a keyframe; remember start times.
        let mut seg_starts = Vec::new();
        for e in &entries {
            let (pts, key) = first_video_packet(&segment_path(&dir, e));
            assert!(key, "{}/{} does not start with a keyframe", v.uri, e.uri);
            seg_starts.push(pts);
        }
        starts.push(seg_starts);

        // Declared bandwidth matches what the segments carry (within 10%).
        let mut peak = 0f64;
        let mut bits = 0f64;
        let mut secs = 0f64;
        for (i, e) in entries.iter().enumerate() {
            let mut bytes = std::fs::metadata(segment_path(&dir, e))
                .expect("segment")
                .len() as f64;
            if let Some(audio) = &audio_entries {
                if let Some(a) = audio.get(i) {
                    bytes += std::fs::metadata(root.join("audio").join(&a.uri))
                        .expect("audio seg")
                        .len() as f64;
                }
            }
            peak = peak.max(bytes * 8.0 / e.duration);
            bits += bytes * 8.0;
            secs += e.duration;
        }
        let declared_peak: f64 = v.attrs["BANDWIDTH"].parse().expect("BANDWIDTH");
        let declared_avg: f64 = v.attrs["AVERAGE-BANDWIDTH"]
            .parse()
            .expect("AVERAGE-BANDWIDTH");
        assert!(
            (declared_peak / peak - 1.0).abs() <= 0.10,
            "{} BANDWIDTH {declared_peak} vs measured {peak}",
            v.uri
        );
        assert!(
            (declared_avg / (bits / secs) - 1.0).abs() <= 0.10,
            "{} AVERAGE-BANDWIDTH {declared_avg}",
            v.uri
        );

        // CODECS carries the real profile and level of the stream.
        let first = segment_path(&dir, &entries[0]);
        let probe = ffprobe(
            &first,
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=profile,level,width,height",
            ],
        );
        let stream = &probe["streams"][0];
        let codecs = &v.attrs["CODECS"];
        let level = stream["level"].as_i64().expect("level");
        let profile_idc = match stream["profile"].as_str().expect("profile") {
            "High" => "64",
            "Main" => "4d",
            "Baseline" | "Constrained Baseline" => "42",
            other => panic!("unexpected H.264 profile {other}"),
        };
        let video_codec = codecs.split(',').next().expect("video codec");
        assert!(
            video_codec.starts_with(&format!("avc1.{profile_idc}")),
            "{codecs} vs profile {}",
            stream["profile"]
        );
        assert!(
            video_codec.ends_with(&format!("{level:02x}")),
            "{codecs} vs level {level}"
        );
        assert_eq!(
            format!("{}x{}", stream["width"], stream["height"]),
            v.attrs["RESOLUTION"],
            "segment size of {}",
            v.uri
        );
        if expect.audio {
            assert!(codecs.ends_with(",mp4a.40.2"), "{codecs}");
            assert_eq!(v.attrs["AUDIO"], "audio");
        }
        check_iframes(&dir);
    }
    // Segment N starts at the same time in every rendition.
    for s in &starts[1..] {
        assert_eq!(
            s, &starts[0],
            "segment start times differ between renditions"
        );
    }
    if expect.audio {
        let probe = ffprobe(
            &root
                .join("audio")
                .join(&audio_entries.as_ref().expect("audio")[0].uri),
            &[
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=codec_name,channels,profile,sample_rate",
            ],
        );
        let a = &probe["streams"][0];
        assert_eq!(a["codec_name"], "aac");
        assert_eq!(a["channels"], 2);
        assert_eq!(a["profile"], "LC");
    }
    assert_eq!(
        decode_master(&master),
        expect.frames,
        "frames decoded through the master playlist"
    );
    let thumb = ffprobe(
        &root.join("thumbnail.jpg"),
        &["-show_entries", "stream=codec_name,width,height"],
    );
    assert_eq!(thumb["streams"][0]["codec_name"], "mjpeg");
}

/// Every I-frame byte range is a decodable keyframe on its own.
fn check_iframes(dir: &Path) {
    let entries = media_entries(&dir.join("iframes.m3u8"));
    assert!(!entries.is_empty());
    let tmp = tempfile::tempdir().expect("tempdir");
    for e in entries.iter().take(3) {
        let (offset, len) = e.byterange.expect("BYTERANGE");
        let bytes = std::fs::read(dir.join(&e.uri)).expect("segment");
        assert!(offset + len <= bytes.len() as u64);
        let chunk = tmp.path().join("iframe.ts");
        std::fs::write(&chunk, &bytes[offset as usize..(offset + len) as usize]).expect("write");
        let probe = ffprobe(
            &chunk,
            &[
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=nb_read_frames",
            ],
        );
        let frames: u64 = probe["streams"][0]["nb_read_frames"]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        assert!(frames >= 1, "I-frame range of {} does not decode", e.uri);
    }
}

/// `python3 -m http.server` on a free loopback port, stopped on drop.
pub struct HttpServer {
    child: std::process::Child,
    pub port: u16,
}

impl HttpServer {
    pub fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start python3 http.server");
        // Ready when it accepts connections (bounded: 20 s).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http server did not start"
            );
            std::thread::yield_now();
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
