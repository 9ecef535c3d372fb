//! transcode-hls end to end on generated clips, checked with ffprobe and
//! ffmpeg as independent peers: keyframe-aligned segments, equal segment
//! start times across renditions, EXTINF sums, declared versus measured
//! bandwidth, real codec strings, I-frame byte ranges and a full decode
//! through the master playlist.

mod common;

use common::*;
use std::path::Path;

/// Fast settings for tests: short segments so clips have several.
const FAST: &[&str] = &["--preset", "ultrafast", "--segment-duration", "2", "-q"];

fn transcode(inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = vidpipe();
    cmd.arg("transcode-hls")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(FAST)
        .args(extra);
    run(&mut cmd)
}

#[test]
fn landscape_clip_gets_every_rung_up_to_its_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "land.mp4", &ClipSpec::new(854, 480, 5.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_package(&out.join("land"), &Expect::sd_clip(5));
}

#[test]
fn portrait_rotation_stays_portrait() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        rotate: Some(90),
        ..ClipSpec::new(640, 360, 3.0)
    };
    let clip = make_clip(tmp.path(), "phone.mp4", &spec);
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = out.join("phone");
    check_package(
        &root,
        &Expect {
            sizes: vec![(360, 640), (240, 426)],
            audio: true,
            frames: 75,
            fps: 25.0,
        },
    );
    let thumb = ffprobe(
        &root.join("thumbnail.jpg"),
        &["-show_entries", "stream=width,height"],
    );
    assert!(
        thumb["streams"][0]["height"].as_u64() > thumb["streams"][0]["width"].as_u64(),
        "thumbnail is not portrait"
    );
}

#[test]
fn odd_dimensions_become_even_without_upscaling() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "odd.mp4", &ClipSpec::new(643, 361, 2.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_package(
        &out.join("odd"),
        &Expect {
            sizes: vec![(642, 360), (428, 240)],
            audio: true,
            frames: 50,
            fps: 25.0,
        },
    );
}

#[test]
fn tiny_source_gets_one_rendition_at_its_own_size() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "tiny.mp4", &ClipSpec::new(160, 120, 2.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_package(
        &out.join("tiny"),
        &Expect {
            sizes: vec![(160, 120)],
            audio: true,
            frames: 50,
            fps: 25.0,
        },
    );
}

#[test]
fn video_without_audio_gives_video_only_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        audio: None,
        ..ClipSpec::new(426, 240, 3.0)
    };
    let clip = make_clip(tmp.path(), "silent.mp4", &spec);
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_package(
        &out.join("silent"),
        &Expect {
            sizes: vec![(426, 240)],
            audio: false,
            frames: 75,
            fps: 25.0,
        },
    );
    assert!(!out.join("silent/audio").exists());
}

#[test]
fn surround_audio_is_downmixed_to_stereo_aac() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        audio: Some("5.1"),
        ..ClipSpec::new(426, 240, 3.0)
    };
    let clip = make_clip(tmp.path(), "surround.mkv", &spec);
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // check_package asserts the audio rendition is 2-channel AAC-LC.
    check_package(
        &out.join("surround"),
        &Expect {
            sizes: vec![(426, 240)],
            audio: true,
            frames: 75,
            fps: 25.0,
        },
    );
}

#[test]
fn variable_frame_rate_becomes_constant_and_aligned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        variable_rate: true,
        fps: 30,
        ..ClipSpec::new(640, 360, 4.0)
    };
    let clip = make_clip(tmp.path(), "vfr.mp4", &spec);
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &["--progress", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o.stdout);
    let probe = ev
        .iter()
        .find(|e| e["event"] == "probe")
        .expect("probe event");
    let fps = probe["fps"].as_f64().expect("fps");
    let frames = (4.0 * fps).round() as u64;
    check_package(
        &out.join("vfr"),
        &Expect {
            sizes: vec![(640, 360), (426, 240)],
            audio: true,
            frames,
            fps,
        },
    );
}

#[test]
fn fmp4_segments_play_through_the_master() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "frag.mp4", &ClipSpec::new(426, 240, 4.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &["--segment-format", "fmp4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = out.join("frag");
    let media = std::fs::read_to_string(root.join("240p/index.m3u8")).expect("playlist");
    assert!(media.contains("#EXT-X-MAP:URI=\"init.mp4\""));
    assert!(media.contains("seg_00000.m4s"));
    assert!(root.join("240p/init.mp4").exists() && root.join("audio/init.mp4").exists());
    assert_eq!(decode_master(&root.join("master.m3u8")), 100);
    let entries = media_entries(&root.join("240p/iframes.m3u8"));
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .all(|e| e.byterange.is_some_and(|(off, len)| off == 0 && len > 0)));
}

#[test]
fn json_progress_reports_milestones_in_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "events.mp4", &ClipSpec::new(426, 240, 3.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &["--progress", "json"]);
    assert!(o.status.success());
    let ev = events(&o.stdout);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k} event in {kinds:?}"))
    };
    assert!(pos("probe") < pos("thumbnail_ready"));
    assert!(
        pos("thumbnail_ready") < pos("segment_written"),
        "thumbnail must be announced before encoding"
    );
    assert!(pos("rendition_done") < pos("done"));
    assert_eq!(kinds.last(), Some(&"done"));
    let progress: Vec<f64> = ev
        .iter()
        .filter(|e| e["event"] == "progress" && e["rendition"] == "240p")
        .map(|e| e["percent"].as_f64().expect("percent"))
        .collect();
    assert!(
        progress.len() >= 5 && progress.len() <= 60,
        "throttled progress: {progress:?}"
    );
    assert!(progress
        .windows(2)
        .all(|w| w[1] - w[0] >= 2.0 || w[1] >= 100.0));
}

#[test]
fn batch_of_files_and_directories_gets_one_folder_each() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("incoming");
    std::fs::create_dir_all(dir.join("nested")).expect("mkdir");
    make_clip(&dir, "one.mp4", &ClipSpec::new(320, 240, 1.0));
    make_clip(
        &dir.join("nested"),
        "two.mov",
        &ClipSpec::new(320, 240, 1.0),
    );
    std::fs::write(dir.join("readme.txt"), "not a video").expect("write");
    let out = tmp.path().join("out");
    let o = transcode(&[&dir], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("one/master.m3u8").exists());
    assert!(out.join("two/master.m3u8").exists());
}

#[test]
fn rerun_of_a_finished_input_skips_every_rendition() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "again.mp4", &ClipSpec::new(320, 240, 2.0));
    let out = tmp.path().join("out");
    assert!(transcode(&[&clip], &out, &[]).status.success());
    let seg = out.join("again/240p/seg_00000.ts");
    let before = std::fs::metadata(&seg)
        .expect("seg")
        .modified()
        .expect("mtime");
    let o = transcode(&[&clip], &out, &["--progress", "json"]);
    assert!(o.status.success());
    let ev = events(&o.stdout);
    let skipped: Vec<_> = ev
        .iter()
        .filter(|e| e["event"] == "rendition_skipped")
        .collect();
    assert_eq!(skipped.len(), 2, "240p and audio are skipped: {ev:?}");
    assert!(!ev.iter().any(|e| e["event"] == "segment_written"));
    assert_eq!(
        std::fs::metadata(&seg)
            .expect("seg")
            .modified()
            .expect("mtime"),
        before
    );
}

#[test]
fn changed_settings_start_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "redo.mp4", &ClipSpec::new(320, 240, 2.0));
    let out = tmp.path().join("out");
    assert!(transcode(&[&clip], &out, &[]).status.success());
    let o = transcode(
        &[&clip],
        &out,
        &["--progress", "json", "--audio-bitrate", "64k"],
    );
    assert!(o.status.success());
    let ev = events(&o.stdout);
    assert!(
        !ev.iter().any(|e| e["event"] == "rendition_skipped"),
        "new settings must re-encode"
    );
    assert!(ev.iter().any(|e| e["event"] == "segment_written"));
}

#[test]
fn the_audio_rendition_always_has_a_language_and_an_override_rewrites_only_the_master() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "lang.mp4", &ClipSpec::new(320, 240, 2.0));
    let out = tmp.path().join("out");
    let master = || std::fs::read_to_string(out.join("lang/master.m3u8")).expect("master");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        master().contains(",LANGUAGE=\"und\",NAME=\"Original audio\","),
        "{}",
        master()
    );

    let o = transcode(
        &[&clip],
        &out,
        &["--progress", "json", "--audio-language", "fr"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        master().contains(",LANGUAGE=\"fr\",NAME=\"French\","),
        "{}",
        master()
    );
    let ev = events(&o.stdout);
    assert!(
        !ev.iter().any(|e| e["event"] == "segment_written"),
        "a new language must not re-encode: {ev:?}"
    );

    let o = transcode(&[&clip], &out, &["--audio-language", "fr_FR"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--audio-language"), "{stderr}");
    assert!(stderr.contains("fr-FR"), "{stderr}");
}

#[test]
fn a_tagged_source_gives_its_language_in_the_two_letter_form() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let plain = make_clip(tmp.path(), "plain.mp4", &ClipSpec::new(320, 240, 1.0));
    let clip = tmp.path().join("tagged.mkv");
    let o = run(std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&plain)
        .args(["-c", "copy", "-metadata:s:a:0", "language=fre"])
        .arg(&clip));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let master = std::fs::read_to_string(out.join("tagged/master.m3u8")).expect("master");
    assert!(
        master.contains(",LANGUAGE=\"fr\",NAME=\"French\","),
        "{master}"
    );
}

#[test]
fn http_input_is_streamed_by_libav() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("www");
    std::fs::create_dir(&served).expect("mkdir");
    make_clip(&served, "remote.mp4", &ClipSpec::new(320, 240, 2.0));
    let server = HttpServer::start(&served);
    let url = format!("http://127.0.0.1:{}/remote.mp4", server.port);
    let out = tmp.path().join("out");
    let mut cmd = vidpipe();
    cmd.args(["transcode-hls", &url, "-o"]).arg(&out).args(FAST);
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_package(
        &out.join("remote"),
        &Expect {
            sizes: vec![(320, 240)],
            audio: true,
            frames: 50,
            fps: 25.0,
        },
    );
}

#[test]
fn http_input_without_range_support_is_read_through_a_scratch_copy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let served = tmp.path().join("www");
    std::fs::create_dir(&served).expect("mkdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 2.0));
    // The index (moov) after the media data: reaching it and coming back
    // needs seeking, which python's http.server (no Range support) refuses.
    let o = run(std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-movflags", "-faststart"])
        .arg(served.join("end.mp4")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = HttpServer::start(&served);
    let url = format!("http://127.0.0.1:{}/end.mp4", server.port);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let out = tmp.path().join("out");
    let o = run(vidpipe()
        .args(["transcode-hls", &url, "-o"])
        .arg(&out)
        .args(["--preset", "ultrafast", "--segment-duration", "2"])
        .env("TMPDIR", &scratch));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {url}: the server ignores Range requests; reading it through a local copy"
        )),
        "{stderr}"
    );
    check_package(
        &out.join("end"),
        &Expect {
            sizes: vec![(320, 240)],
            audio: true,
            frames: 50,
            fps: 25.0,
        },
    );
    // probe goes through the same copy.
    let o = run(vidpipe().args(["probe", &url]).env("TMPDIR", &scratch));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(info["video"]["width"], 320, "{info}");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .expect("read scratch dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "scratch files left behind: {left:?}");
}

/// PSNR (dB) of image `a` against image `b`, both scaled to b's size.
fn image_psnr(a: &Path, b: &Path) -> f64 {
    let o = run(std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args([
            "-lavfi",
            "[0:v]format=yuv420p[x];[1:v]format=yuv420p[y];[x][y]psnr",
            "-f",
            "null",
            "-",
        ]));
    let text = String::from_utf8_lossy(&o.stderr);
    let avg = text.split("average:").nth(1).expect("psnr output");
    let value = avg.split_whitespace().next().expect("number");
    if value == "inf" {
        f64::INFINITY
    } else {
        value.parse().expect("psnr")
    }
}

#[test]
fn thumbnail_is_the_frame_at_one_second_and_comes_back_if_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "thumb.mp4", &ClipSpec::new(320, 240, 3.0));
    let out = tmp.path().join("out");
    assert!(transcode(&[&clip], &out, &[]).status.success());
    let thumb = out.join("thumb/thumbnail.jpg");
    let frame_at = |secs: &str, name: &str| {
        let path = tmp.path().join(name);
        let o = run(std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", secs, "-i"])
            .arg(&clip)
            .args(["-frames:v", "1"])
            .arg(&path));
        assert!(o.status.success());
        path
    };
    let at_one = image_psnr(&thumb, &frame_at("1", "one.png"));
    let at_two = image_psnr(&thumb, &frame_at("2", "two.png"));
    assert!(
        at_one > 30.0 && at_one > at_two + 3.0,
        "thumbnail PSNR vs 1 s {at_one}, vs 2 s {at_two}"
    );

    std::fs::remove_file(&thumb).expect("rm");
    let o = transcode(&[&clip], &out, &["--progress", "json"]);
    assert!(o.status.success());
    let ev = events(&o.stdout);
    assert!(ev.iter().any(|e| e["event"] == "thumbnail_ready"));
    assert_eq!(
        ev.iter()
            .filter(|e| e["event"] == "rendition_skipped")
            .count(),
        2
    );
    assert!(!ev.iter().any(|e| e["event"] == "segment_written"));
    assert!(image_psnr(&thumb, &tmp.path().join("one.png")) > 30.0);
}

/// Issue: changing the ladder left the old renditions' segments behind.
/// A re-run with other settings removes what its new master no longer
/// lists: a dropped rung, and the segments of the other format.
#[test]
fn a_settings_change_removes_what_the_new_master_no_longer_lists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "talk.mp4", &ClipSpec::new(320, 240, 5.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&clip], &out, &["--ladder", "240:400k,180:200k"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("talk/180p/seg_00000.ts").exists());

    let o = transcode(
        &[&clip],
        &out,
        &["--ladder", "240:400k", "--segment-format", "fmp4"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_only_listed_files(&out.join("talk"));
    assert!(out.join("talk/240p/init.mp4").exists());
    assert!(!out.join("talk/180p/seg_00000.ts").exists());
    assert!(!out.join("talk/240p/seg_00000.ts").exists());
    let master = std::fs::read_to_string(out.join("talk/master.m3u8")).expect("master");
    assert!(!master.contains("180p"), "{master}");
}

/// Each input's first JSON event says where it stands in the batch.
#[test]
fn a_batch_says_where_each_input_stands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = make_clip(tmp.path(), "a.mp4", &ClipSpec::new(320, 240, 1.0));
    let b = make_clip(tmp.path(), "b.mp4", &ClipSpec::new(320, 240, 1.0));
    let out = tmp.path().join("out");
    let o = transcode(&[&a, &b], &out, &["--progress", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probes: Vec<(String, u64, u64)> = events(&o.stdout)
        .iter()
        .filter(|e| e["event"] == "probe")
        .map(|e| {
            let input = e["input"].as_str().expect("input");
            let name = Path::new(input).file_name().expect("name");
            (
                name.to_string_lossy().into_owned(),
                e["index"].as_u64().expect("index"),
                e["total"].as_u64().expect("total"),
            )
        })
        .collect();
    assert_eq!(
        probes,
        vec![("a.mp4".to_string(), 1, 2), ("b.mp4".to_string(), 2, 2)]
    );
}

/// First packet of `stream` (`v:0`, `a:0`) in a TS segment: (pts, dts).
fn first_ts_packet(segment: &Path, stream: &str) -> (f64, f64) {
    let v = ffprobe(
        segment,
        &[
            "-select_streams",
            stream,
            "-show_entries",
            "packet=pts_time,dts_time",
            "-read_intervals",
            "%+#1",
        ],
    );
    let p = &v["packets"][0];
    let time = |k: &str| -> f64 { p[k].as_str().expect(k).parse().expect("number") };
    (time("pts_time"), time("dts_time"))
}

#[test]
fn audio_and_video_start_together_in_ts_and_fmp4() {
    // The default preset has B-frames: the video's first decode time comes
    // a reorder delay before its first presentation time, unless the
    // package takes care (players put the timeline at the lowest one).
    let tmp = tempfile::tempdir().expect("tempdir");
    for format in ["ts", "fmp4"] {
        let out = tmp.path().join(format);
        let o = run(vidpipe()
            .args(["transcode-hls", "fixtures/sample.mp4", "-o"])
            .arg(&out)
            .args(["--ladder", "360:800k", "--segment-format", format, "-q"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dir = out.join("sample");
        if format == "ts" {
            let (video_pts, video_dts) = first_ts_packet(&dir.join("360p/seg_00000.ts"), "v:0");
            let (audio_pts, _) = first_ts_packet(&dir.join("audio/seg_00000.ts"), "a:0");
            assert_eq!(video_pts, 10.0, "MPEG-TS video starts at PTS 900000");
            assert_eq!(audio_pts, video_pts, "audio starts with the video");
            assert_eq!(video_dts, video_pts, "no decode time before the start");
        } else {
            let (video, offset) = common::fmp4::first_presentation(
                &dir.join("360p/init.mp4"),
                &dir.join("360p/seg_00000.m4s"),
            );
            let (audio, _) = common::fmp4::first_presentation(
                &dir.join("audio/init.mp4"),
                &dir.join("audio/seg_00000.m4s"),
            );
            assert!(
                (video - audio).abs() < 1e-6,
                "video {video} s, audio {audio} s"
            );
            assert_eq!(
                offset, 0.0,
                "the first frame is presented at its decode time"
            );
        }
    }
}

/// PSNR (dB) of a rendition against the source scaled straight to its
/// size with bicubic: the reference both scalings are judged by.
fn rendition_psnr(playlist: &Path, source: &Path, width: u32, height: u32) -> f64 {
    let graph = format!("[1:v]scale={width}:{height}:flags=bicubic[ref];[0:v][ref]psnr");
    let o = run(std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(playlist)
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"]));
    let text = String::from_utf8_lossy(&o.stderr);
    let avg = text.split("average:").nth(1).expect("psnr output");
    avg.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("psnr")
}

/// Cascade scaling (each rung from a larger one) costs no rendition more
/// than 0.05 dB PSNR against direct scaling from the source, on a clip
/// with detail and grain like camera footage; and the `done` event says
/// where the CPU went.
#[test]
fn cascade_scaling_stays_within_the_psnr_bound_of_direct_scaling() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_natural_clip(tmp.path(), "wide.mp4", 1280, 720, 4.0);
    // 480p from the source; 320p (a 1.5 step) and 240p (2.0) from 480p.
    let ladder = ["--ladder", "480:1200k,320:600k,240:400k"];
    let mut psnr = Vec::new();
    // The cascade runs on one core (every rendition on the decoding
    // thread), direct scaling on all (a worker thread per rendition).
    for (scaling, threads) in [("cascade", "1"), ("direct", "0")] {
        let out = tmp.path().join(scaling);
        let mut args = vec!["--scaling", scaling, "--progress", "json"];
        if threads != "0" {
            args.extend(["--threads", threads]);
        }
        let o = transcode(&[&clip], &out, &[&ladder[..], &args].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let done = events(&o.stdout)
            .into_iter()
            .find(|e| e["event"] == "done")
            .expect("done event");
        let cpu = &done["cpu"];
        for stage in [
            "decode",
            "480p.encode",
            "240p.scale",
            "240p.encode",
            "total",
        ] {
            assert!(
                cpu[stage].as_f64().is_some_and(|s| s > 0.0),
                "{stage}: {cpu}"
            );
        }
        psnr.push(
            [("480p", 854, 480), ("320p", 568, 320), ("240p", 426, 240)].map(|(name, w, h)| {
                rendition_psnr(&out.join("wide").join(name).join("index.m3u8"), &clip, w, h)
            }),
        );
    }
    for (i, name) in ["480p", "320p", "240p"].iter().enumerate() {
        let (cascade, direct) = (psnr[0][i], psnr[1][i]);
        // Costs no quality: never more than 0.05 dB below direct scaling
        // (x264's response to a slightly different picture moves the
        // result either way by about 0.1 dB).
        assert!(
            cascade >= direct - 0.05,
            "{name}: cascade {cascade:.3} dB, direct {direct:.3} dB (all: {psnr:?})"
        );
    }
}
