//! The whole-package check of a transcode-hls output: master and media
//! playlists, keyframe-aligned segments, declared bandwidth and codecs,
//! I-frame playlists, audio and thumbnail, all against the source clip.

use super::{decode_master, ffprobe, first_video_packet, media_entries, target_duration};
use super::{variants, Entry};
use std::path::{Path, PathBuf};

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

/// Every file in a package's rendition directories is its playlist, its
/// I-frame playlist, its init segment or a segment the playlist lists; a
/// directory without a playlist (a rung the package no longer has) holds
/// nothing. What a ladder or format change left must be gone.
pub fn assert_only_listed_files(package: &Path) {
    let dirs = std::fs::read_dir(package).unwrap_or_else(|e| panic!("{}: {e}", package.display()));
    for dir in dirs
        .map(|d| d.expect("entry").path())
        .filter(|p| p.is_dir())
    {
        if dir.file_name().is_some_and(|n| n == ".vidpipe") {
            continue;
        }
        let playlist = dir.join("index.m3u8");
        let listed: Vec<String> = if playlist.exists() {
            media_entries(&playlist)
                .into_iter()
                .map(|e| e.uri)
                .collect()
        } else {
            Vec::new()
        };
        for file in walkdir::WalkDir::new(&dir)
            .into_iter()
            .map(|e| e.expect("walk"))
        {
            if !file.file_type().is_file() {
                continue;
            }
            let name = file
                .path()
                .strip_prefix(&dir)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            let known = ["index.m3u8", "iframes.m3u8", "init.mp4"].contains(&name.as_str());
            assert!(
                playlist.exists() && (known || listed.contains(&name)),
                "{} is left over (listed: {listed:?})",
                file.path().display()
            );
        }
    }
}
