//! `commentary` end to end on generated clips, measured with ffmpeg and
//! ffprobe as independent peers: the voice starts one second after its
//! line, the original is ducked to 20% (-14 dB) under it, chunks add up
//! to the video and decode with moov first and an IDR first, the joined
//! file has no gap at the joins, `--auto` finds what was planted, failing
//! TTS degrades, re-runs resume, `--hls` keeps an EVENT playlist, bad
//! scripts are named by file and line, and output can go to a bucket.
//!
//! The tests' TTS is a tiny script writing a 1500 Hz tone (the clips'
//! own sound is 440 Hz), so voice and original can be told apart by
//! frequency; one test uses the real espeak-ng.

mod common;

use common::garage::Garage;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RATE: usize = 48_000;
const VOICE_HZ: f64 = 1500.0;
const ORIG_HZ: f64 = 440.0;
/// One AAC frame: the precision the voice onset is held to.
const AAC_FRAME: f64 = 1024.0 / 48_000.0;

/// A TTS command that writes a `secs`-long 1500 Hz tone to `{out}`.
fn tone_tts(dir: &Path, secs: f64) -> String {
    let script = dir.join(format!("tone-{secs}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec ffmpeg -v error -y -f lavfi -i sine=frequency={VOICE_HZ}:sample_rate=48000:duration={secs} -ac 1 \"$1\"\n"
        ),
    )
    .expect("write tts script");
    format!("sh {} {{out}}", script.display())
}

fn write_script(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("script.yaml");
    std::fs::write(&path, yaml).expect("write script");
    path
}

fn commentary(video: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = vidpipe();
    cmd.arg("commentary")
        .arg(video)
        .arg("-o")
        .arg(out)
        .args(["--preset", "ultrafast", "--progress", "json"])
        .args(extra);
    run(&mut cmd)
}

/// The audio of a file as mono f32 at 48 kHz, decoded by ffmpeg.
fn mono_pcm(path: &Path) -> Vec<f32> {
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"]));
    assert!(
        out.status.success(),
        "decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Amplitude of the `hz` component of `x` (Goertzel).
fn tone_level(x: &[f32], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / RATE as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len().max(1) as f64
}

fn span(x: &[f32], from: f64, to: f64) -> &[f32] {
    let a = ((from * RATE as f64) as usize).min(x.len());
    let b = ((to * RATE as f64) as usize).min(x.len());
    &x[a..b]
}

/// First time after `from` at which the voice tone is sounding (5 ms
/// blocks, half its steady level).
fn voice_onset(x: &[f32], from: f64) -> f64 {
    let block = 240;
    let start = (from * RATE as f64) as usize;
    let levels: Vec<f64> = x[start..]
        .chunks(block)
        .map(|b| tone_level(b, VOICE_HZ))
        .collect();
    let steady = levels.iter().cloned().fold(0.0, f64::max);
    assert!(steady > 0.05, "no voice after {from}s (peak {steady})");
    let first = levels
        .iter()
        .position(|l| *l > steady / 2.0)
        .expect("onset");
    from + (first * block) as f64 / RATE as f64
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Top-level MP4 boxes in order.
fn boxes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read mp4");
    let mut names = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        names.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size;
    }
    names
}

fn moov_before_mdat(path: &Path) {
    let b = boxes(path);
    let moov = b.iter().position(|n| n == "moov");
    let mdat = b.iter().position(|n| n == "mdat");
    assert!(
        moov.is_some() && moov < mdat,
        "{}: boxes {b:?}",
        path.display()
    );
}

/// Decodes every stream of a file to the end; no error may be printed.
fn decodes_cleanly(path: &Path) {
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-f", "null", "-"]));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{} does not decode cleanly: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stream_duration(path: &Path, stream: &str) -> f64 {
    let v = ffprobe(
        path,
        &[
            "-select_streams",
            stream,
            "-show_entries",
            "stream=duration",
        ],
    );
    v["streams"][0]["duration"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no {stream} duration", path.display()))
        .parse()
        .expect("number")
}

fn chunk_paths(out: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(out.join("chunks"))
        .expect("chunks dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    paths.sort();
    paths
}

fn events_of(o: &Output, kind: &str) -> Vec<serde_json::Value> {
    events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

#[test]
fn voice_starts_a_second_after_its_line_over_the_ducked_original() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "talk.mp4", &ClipSpec::new(320, 240, 8.0));
    // The second line's voice (3.6 s + 1 s) crosses the chunk boundary at 6 s.
    let script = write_script(
        tmp.path(),
        "- at: 1.0\n  text: one\n- at: 4.6\n  text: two\n",
    );
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 1.2);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "3",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let pcm = mono_pcm(&out.join("commentary.mp4"));
    for line_at in [1.0, 4.6] {
        let onset = voice_onset(&pcm, line_at + 0.3);
        assert!(
            (onset - (line_at + 1.0)).abs() <= AAC_FRAME + 0.005,
            "voice of the line at {line_at}s starts at {onset}s"
        );
        // Original level well before the voice versus in the middle of it.
        let before = tone_level(span(&pcm, line_at - 0.8, line_at + 0.6), ORIG_HZ);
        let under = tone_level(span(&pcm, line_at + 1.2, line_at + 2.0), ORIG_HZ);
        let duck = db(under / before);
        assert!(
            (duck - -14.0).abs() <= 1.0,
            "original under the voice at {line_at}s: {duck:.2} dB"
        );
    }
    // In the chunk itself, the first voice starts at 2 s.
    let chunk0 = mono_pcm(&chunk_paths(&out)[0]);
    let onset = voice_onset(&chunk0, 1.3);
    assert!(
        (onset - 2.0).abs() <= AAC_FRAME + 0.005,
        "chunk 0 onset {onset}"
    );
}

#[test]
fn duck_auto_compresses_the_original_while_the_voice_plays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 5.0));
    let script = write_script(tmp.path(), "- at: 1.0\n  text: one\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 1.5);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "3",
            "--duck",
            "auto",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let pcm = mono_pcm(&out.join("commentary.mp4"));
    let before = tone_level(span(&pcm, 0.2, 1.6), ORIG_HZ);
    let under = tone_level(span(&pcm, 2.3, 3.3), ORIG_HZ);
    let after = tone_level(span(&pcm, 4.2, 4.9), ORIG_HZ);
    assert!(
        db(under / before) < -10.0,
        "ducked by {:.1} dB",
        db(under / before)
    );
    assert!(
        db(after / before).abs() < 1.0,
        "after the voice: {:.1} dB",
        db(after / before)
    );
    let onset = voice_onset(&pcm, 1.3);
    assert!((onset - 2.0).abs() <= AAC_FRAME + 0.005, "onset {onset}");
}

#[test]
fn chunks_add_up_decode_and_join_without_gaps() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "seven.mp4", &ClipSpec::new(320, 240, 7.0));
    let script = write_script(tmp.path(), "- at: 2.5\n  text: across the join\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 1.0);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "3",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let chunks = chunk_paths(&out);
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    let mut sum = 0.0;
    for c in &chunks {
        moov_before_mdat(c);
        decodes_cleanly(c);
        let (pts, key) = first_video_packet(c);
        assert!(
            key && pts.abs() < 1e-6,
            "{} starts with {pts} key={key}",
            c.display()
        );
        let v = stream_duration(c, "v:0");
        let a = stream_duration(c, "a:0");
        assert!(
            (v - a).abs() <= 0.04,
            "{}: video {v} audio {a}",
            c.display()
        );
        sum += v;
    }
    assert!((sum - 7.0).abs() <= 0.04, "chunk durations add up to {sum}");
    let fin = out.join("commentary.mp4");
    moov_before_mdat(&fin);
    decodes_cleanly(&fin);
    let v = stream_duration(&fin, "v:0");
    let a = stream_duration(&fin, "a:0");
    assert!(
        (v - 7.0).abs() <= 0.04 && (a - 7.0).abs() <= 0.04,
        "final: video {v} audio {a}"
    );
    assert_eq!(decode_master(&fin), 175, "frames in the final file");
    // No gap at the joins: the original tone never drops out (10 ms
    // windows), except where the voice ducks it.
    let pcm = mono_pcm(&fin);
    let reference = tone_level(span(&pcm, 0.2, 1.0), ORIG_HZ);
    for join in [3.0, 6.0] {
        for w in 0..20 {
            let from = join - 0.1 + w as f64 * 0.01;
            let window = span(&pcm, from, from + 0.01);
            let rms = (window.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
                / window.len() as f64)
                .sqrt();
            assert!(
                rms > reference * 0.1,
                "audio drops out at {from:.2}s near the join at {join}s (rms {rms})"
            );
        }
    }
    // Announced in order of time, the first chunk first.
    let ready = events_of(&o, "chunk_ready");
    assert_eq!(ready.len(), 3);
    assert_eq!(ready[0]["index"], 0);
    let ends: Vec<f64> = ready
        .iter()
        .map(|e| e["end"].as_f64().expect("end"))
        .collect();
    assert!(ends.contains(&7.0), "{ends:?}");
    let complete = events_of(&o, "complete");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0]["chunks"], 3);
}

#[test]
fn a_video_without_audio_gets_the_voice_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = ClipSpec {
        audio: None,
        ..ClipSpec::new(320, 240, 4.0)
    };
    let clip = make_clip(tmp.path(), "mute.mp4", &spec);
    let script = write_script(tmp.path(), "- at: 0.5\n  text: hello\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 0.8);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "2",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let fin = out.join("commentary.mp4");
    decodes_cleanly(&fin);
    let pcm = mono_pcm(&fin);
    let onset = voice_onset(&pcm, 0.0);
    assert!((onset - 1.5).abs() <= AAC_FRAME + 0.005, "onset {onset}");
    let warnings = events_of(&o, "warning");
    assert!(
        warnings
            .iter()
            .any(|w| w["message"].as_str().unwrap_or("").contains("no audio")),
        "{warnings:?}"
    );
}

/// Scene cuts at 3 s and 6 s (three different pictures), a loud burst at
/// 4.5–5 s over a steady quiet tone.
fn planted_clip(dir: &Path) -> PathBuf {
    let path = dir.join("planted.mp4");
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3"])
        .args(["-f", "lavfi", "-i", "smptebars=size=320x240:rate=25:duration=3"])
        .args(["-f", "lavfi", "-i", "mandelbrot=size=320x240:rate=25,trim=duration=3"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=9,volume='if(between(t,4.5,5),6,0.5)':eval=frame,aformat=channel_layouts=stereo",
        ])
        .args(["-filter_complex", "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]"])
        .args(["-map", "[v]", "-map", "3:a", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-c:a", "aac", "-b:a", "96k"])
        .arg(&path));
    succeeded(&out, "make", "planted.mp4");
    path
}

#[test]
fn auto_finds_the_planted_cuts_and_loud_moment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = planted_clip(tmp.path());
    let mut cmd = vidpipe();
    cmd.arg("commentary").arg(&clip).args([
        "--auto",
        "--events-only",
        "--interval",
        "3",
        "--progress",
        "none",
    ]);
    let o = run(&mut cmd);
    ok(&o);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("events JSON");
    let events = json["events"].as_array().expect("events");
    let at = |kind: &str| -> Vec<f64> {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["at"].as_f64().expect("at"))
            .collect()
    };
    let cuts = at("scene_cut");
    assert_eq!(cuts.len(), 2, "scene cuts {cuts:?} in {events:?}");
    assert!(
        (cuts[0] - 3.0).abs() <= 0.04 && (cuts[1] - 6.0).abs() <= 0.04,
        "{cuts:?}"
    );
    let loud = at("loud");
    assert_eq!(loud.len(), 1, "loud moments {loud:?} in {events:?}");
    assert!((4.4..=5.1).contains(&loud[0]), "{loud:?}");

    // The full run speaks lines for them and builds every chunk.
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 0.5);
    let o = commentary(
        &clip,
        &out,
        &["--auto", "--interval", "3", "--tts-cmd", &tts],
    );
    ok(&o);
    assert_eq!(events_of(&o, "chunk_ready").len(), 3);
    let speech = events_of(&o, "status")
        .into_iter()
        .rfind(|e| e["stage"] == "speech")
        .expect("speech status");
    assert!(speech["done"].as_u64() >= Some(2), "{speech}");
    let pcm = mono_pcm(&out.join("commentary.mp4"));
    let onset = voice_onset(&pcm, 3.5);
    assert!(
        (onset - 4.0).abs() <= AAC_FRAME + 0.005,
        "voice for the cut at 3 s: {onset}"
    );
}

#[test]
fn failing_or_hanging_tts_degrades_to_chunks_without_voice() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let script = write_script(
        tmp.path(),
        "- at: 0.5\n  text: one\n- at: 2.5\n  text: two\n",
    );
    for (tts, reason) in [
        (
            "sh -c 'echo engine broke >&2; exit 3' {out}",
            "engine broke",
        ),
        ("sh -c 'sleep 60' {out}", "did not finish"),
    ] {
        let out = tmp.path().join(format!("out-{}", reason.len()));
        let o = commentary(
            &clip,
            &out,
            &[
                "--script",
                script.to_str().expect("utf8"),
                "--interval",
                "2",
                "--tts-cmd",
                tts,
                "--tts-timeout",
                "1",
            ],
        );
        ok(&o);
        let warnings = events_of(&o, "warning");
        for line in ["script.yaml:1", "script.yaml:3"] {
            assert!(
                warnings.iter().any(|w| {
                    let m = w["message"].as_str().unwrap_or("");
                    m.contains(line) && m.contains(reason)
                }),
                "no warning naming {line} ({reason}): {warnings:?}"
            );
        }
        assert_eq!(chunk_paths(&out).len(), 2);
        let pcm = mono_pcm(&out.join("commentary.mp4"));
        // No voice, and the original is not ducked.
        assert!(tone_level(&pcm, VOICE_HZ) < 0.005);
        let quiet = tone_level(span(&pcm, 1.6, 2.2), ORIG_HZ);
        let normal = tone_level(span(&pcm, 0.1, 0.5), ORIG_HZ);
        assert!(db(quiet / normal).abs() < 1.0);
    }
}

#[test]
fn default_tts_is_espeak_ng() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let script = write_script(
        tmp.path(),
        "- at: 0.5\n  text: Hello from the commentary box.\n",
    );
    let out = tmp.path().join("out");
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "2",
        ],
    );
    ok(&o);
    assert!(
        events_of(&o, "warning").is_empty(),
        "{:?}",
        events_of(&o, "warning")
    );
    let pcm = mono_pcm(&out.join("commentary.mp4"));
    let rms =
        |x: &[f32]| (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    // Before the voice: the original alone. While espeak speaks: the
    // original ducked to 20%, plus a voice much louder than that.
    let before = rms(span(&pcm, 0.1, 1.4));
    let speaking = rms(span(&pcm, 1.6, 2.4));
    let under = tone_level(span(&pcm, 1.6, 2.4), ORIG_HZ);
    assert!(speaking > before, "speech {speaking} vs original {before}");
    assert!(db(under / tone_level(span(&pcm, 0.1, 1.4), ORIG_HZ)) < -10.0);
}

/// A script whose last line's TTS takes long (until `fast-now` exists in
/// `dir`), so the last chunk cannot be ready when the first one is
/// announced: commentary's arguments for it, with 2 s chunks.
fn slow_last_line(dir: &Path) -> Vec<String> {
    let script = write_script(dir, "- at: 0.5\n  text: quick\n- at: 4.5\n  text: slow\n");
    let tts_script = dir.join("maybe-slow.sh");
    std::fs::write(
        &tts_script,
        format!(
            "#!/bin/sh\ncase \"$2\" in *slow*) [ -e \"{flag}\" ] || sleep 60;; esac\nexec ffmpeg -v error -y -f lavfi -i sine=frequency={VOICE_HZ}:duration=0.5 -ac 1 \"$1\"\n",
            flag = dir.join("fast-now").display()
        ),
    )
    .expect("write tts");
    let tts = format!("sh {} {{out}} {{text}}", tts_script.display());
    [
        "--script",
        script.to_str().expect("utf8"),
        "--interval",
        "2",
        "--tts-cmd",
        &tts,
    ]
    .map(String::from)
    .to_vec()
}

/// Runs `cmd` (a commentary with `--progress json`) and interrupts it with
/// SIGINT as soon as it announces its first chunk; it must exit 130 and
/// say how to resume.
fn interrupt_after_first_chunk(cmd: Command) -> Output {
    let first = interrupt_when(cmd, "\"chunk_ready\"");
    assert_eq!(
        first.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("run the same command again"));
    first
}

#[test]
fn interrupted_run_keeps_finished_chunks_and_a_rerun_makes_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 6.0));
    let args = slow_last_line(tmp.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tmp.path().join("out");
    let mut cmd = vidpipe();
    cmd.arg("commentary")
        .arg(&clip)
        .arg("-o")
        .arg(&out)
        .args(["--preset", "ultrafast", "--progress", "json"])
        .args(&args);
    interrupt_after_first_chunk(cmd);
    assert!(!out.join("commentary.mp4").exists());
    let kept = chunk_paths(&out);
    assert!(!kept.is_empty() && kept.len() < 3, "{kept:?}");
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let kept_time = modified(&kept[0]);
    let no_temp = |dir: &Path| {
        let leftovers: Vec<_> = walk(dir)
            .into_iter()
            .filter(|p| {
                let rel = p.strip_prefix(dir).unwrap_or(p);
                rel.to_string_lossy().ends_with(".part")
                    || rel.components().any(|c| c.as_os_str() == "tmp")
            })
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    };
    no_temp(&out);

    std::fs::write(tmp.path().join("fast-now"), "").expect("flag");
    let o = commentary(&clip, &out, &args);
    ok(&o);
    assert_eq!(
        modified(&kept[0]),
        kept_time,
        "a finished chunk was made again"
    );
    let first_status = events_of(&o, "status")
        .into_iter()
        .find(|e| e["stage"] == "chunks")
        .expect("chunks status");
    assert_eq!(first_status["done"].as_u64(), Some(kept.len() as u64));
    assert_eq!(chunk_paths(&out).len(), 3);
    decodes_cleanly(&out.join("commentary.mp4"));
    no_temp(&out);

    // Nothing left to do: the run says so without rebuilding anything.
    let o = commentary(&clip, &out, &args);
    ok(&o);
    assert_eq!(events_of(&o, "complete").len(), 1);
    assert_eq!(modified(&kept[0]), kept_time);

    // Other settings start over, and leave no chunk of the old layout.
    let mut longer = args.clone();
    longer[3] = "3";
    let o = commentary(&clip, &out, &longer);
    ok(&o);
    assert_eq!(events_of(&o, "chunk_ready").len(), 2);
    assert_eq!(chunk_paths(&out).len(), 2, "{:?}", chunk_paths(&out));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn hls_keeps_an_event_playlist_that_ends_with_endlist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 5.0));
    let script = write_script(tmp.path(), "- at: 1.5\n  text: one\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 0.5);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "2",
            "--hls",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let playlist = out.join("hls/commentary.m3u8");
    let text = std::fs::read_to_string(&playlist).expect("playlist");
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let entries = media_entries(&playlist);
    let uris: Vec<&str> = entries.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris, ["chunk_0000.ts", "chunk_0001.ts", "chunk_0002.ts"]);
    let total: f64 = entries.iter().map(|e| e.duration).sum();
    assert!((total - 5.0).abs() < 0.04, "{total}");
    assert!(entries
        .iter()
        .all(|e| e.duration.round() as u64 <= target_duration(&playlist)));
    assert_eq!(decode_master(&playlist), 125);
}

#[test]
fn a_video_shorter_than_an_interval_is_one_chunk_with_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "short.mp4", &ClipSpec::new(320, 240, 2.0));
    let script = write_script(tmp.path(), "- at: 0.2\n  text: short\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 0.5);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    assert_eq!(chunk_paths(&out).len(), 1);
    let warnings = events_of(&o, "warning");
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .unwrap_or("")
            .contains("shorter than one interval")),
        "{warnings:?}"
    );
    assert!((stream_duration(&chunk_paths(&out)[0], "v:0") - 2.0).abs() < 0.04);
}

#[test]
fn a_tail_shorter_than_a_second_joins_the_last_chunk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "long.mp4", &ClipSpec::new(160, 120, 15.02));
    let script = write_script(tmp.path(), "- at: 0.2\n  text: start\n");
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 0.5);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--tts-cmd",
            &tts,
            "--interval",
            "5",
        ],
    );
    ok(&o);
    let chunks = chunk_paths(&out);
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    let last = stream_duration(&chunks[2], "v:0");
    assert!((last - 5.04).abs() < 0.05, "last chunk is {last} s");
}

#[test]
fn an_unknown_espeak_voice_is_a_usage_error_before_any_work() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(160, 120, 1.0));
    let script = write_script(tmp.path(), "- at: 0.2\n  text: hello\n");
    let out = tmp.path().join("out");
    let script = script.to_str().expect("utf8");
    let o = commentary(&clip, &out, &["--script", script, "--voice", "xx-bogus"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("--voice"), "{stderr}");
    assert!(stderr.contains("xx-bogus"), "{stderr}");
    assert!(!out.join("chunks").exists(), "no chunk was made");
    // A TTS command has no espeak-ng voices to check.
    let tts = tone_tts(tmp.path(), 0.2);
    let o = commentary(
        &clip,
        &out,
        &["--script", script, "--voice", "xx-bogus", "--tts-cmd", &tts],
    );
    ok(&o);
    // A real voice passes.
    let o = commentary(&clip, &out, &["--script", script, "--voice", "en-us"]);
    ok(&o);
}

#[test]
fn bad_scripts_are_named_by_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 3.0));
    std::fs::write(tmp.path().join("notes.wav"), "not audio at all").expect("write");
    let cases = [
        (
            "- at: 1\n  text: ok\n- at: 9\n  text: too late\n",
            "script.yaml:3",
            "outside the video",
        ),
        ("- at: 1\n  txt: typo\n", "script.yaml:2", "txt"),
        (
            "- at: 1\n  audio: missing.wav\n",
            "script.yaml:2",
            "does not exist",
        ),
        (
            "- at: 1\n  audio: notes.wav\n",
            "script.yaml:2",
            "notes.wav",
        ),
        ("- at: 99:99\n  text: x\n", "script.yaml:1", "not a time"),
    ];
    for (yaml, location, reason) in cases {
        let script = write_script(tmp.path(), yaml);
        let out = tmp.path().join("out");
        let o = commentary(&clip, &out, &["--script", script.to_str().expect("utf8")]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains(location) && stderr.contains(reason),
            "{yaml}: expected {location} and {reason} in: {stderr}"
        );
        assert!(
            !out.join("chunks").exists(),
            "nothing is built for a bad script"
        );
    }
}

#[test]
fn overlapping_lines_are_both_spoken_with_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let script = write_script(
        tmp.path(),
        "- at: 0.5\n  text: first\n- at: 0.9\n  text: second\n",
    );
    let out = tmp.path().join("out");
    let tts = tone_tts(tmp.path(), 1.0);
    let o = commentary(
        &clip,
        &out,
        &[
            "--script",
            script.to_str().expect("utf8"),
            "--interval",
            "2",
            "--tts-cmd",
            &tts,
        ],
    );
    ok(&o);
    let warnings = events_of(&o, "warning");
    assert!(
        warnings.iter().any(|w| {
            let m = w["message"].as_str().unwrap_or("");
            m.contains("script.yaml:3: ") && m.contains("script.yaml:1 ")
        }),
        "{warnings:?}"
    );
    let pcm = mono_pcm(&out.join("commentary.mp4"));
    // Both voices sound: the tone runs from 1.5 s to 2.9 s.
    assert!(tone_level(span(&pcm, 2.55, 2.85), VOICE_HZ) > 0.05);
    // The first voice (1.5 s to 2.5 s, one second after its line) is heard
    // where it alone sounds, before the second begins at 1.9 s; before it
    // there is only the clip's 440 Hz.
    assert!(tone_level(span(&pcm, 1.55, 1.85), VOICE_HZ) > 0.05);
    assert!(tone_level(span(&pcm, 0.6, 1.4), VOICE_HZ) < 0.005);
}

#[test]
fn output_to_a_bucket_goes_through_the_storage_layer() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let script = write_script(tmp.path(), "- at: 0.5\n  text: one\n");
    let tts = tone_tts(tmp.path(), 0.5);
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", tmp.path().join("state"))
        .arg("commentary")
        .arg(&clip)
        .args(["-o", &format!("s3://{}/talks/one", garage.bucket)])
        .args(["--script", script.to_str().expect("utf8")])
        .args([
            "--interval",
            "2",
            "--preset",
            "ultrafast",
            "--hls",
            "--tts-cmd",
            &tts,
        ])
        .args(["--progress", "json"]);
    let o = run(&mut cmd);
    ok(&o);
    let keys = garage.keys("talks/one/");
    for key in [
        "chunks/chunk_0000.mp4",
        "chunks/chunk_0001.mp4",
        "commentary.mp4",
        "hls/commentary.m3u8",
        "hls/chunk_0001.ts",
    ] {
        assert!(
            keys.contains(&format!("talks/one/{key}")),
            "missing {key} in {keys:?}"
        );
    }
    // The state stays beside the output, so another machine can resume;
    // the chunks' mixed audio is gone once the final file exists.
    let state: Vec<&String> = keys.iter().filter(|k| k.contains(".vidpipe")).collect();
    assert_eq!(
        state,
        ["talks/one/.vidpipe/commentary/state.json"],
        "{keys:?}"
    );
    let ready = events_of(&o, "chunk_ready");
    assert!(
        ready[0]["path"].as_str().unwrap_or("").starts_with("s3://"),
        "{ready:?}"
    );
    let local = tmp.path().join("download");
    garage.download("talks/one/", &local);
    decodes_cleanly(&local.join("commentary.mp4"));
    moov_before_mdat(&local.join("commentary.mp4"));
}

/// A commentary command writing to `s3://BUCKET/PREFIX`, run as if on a
/// machine of its own: its own state root and working directory.
fn commentary_on_machine(garage: &Garage, machine: &Path, clip: &Path, prefix: &str) -> Command {
    std::fs::create_dir_all(machine).expect("machine dir");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", machine.join("state"))
        .current_dir(machine)
        .arg("commentary")
        .arg(clip)
        .args(["-o", &format!("s3://{}/{prefix}", garage.bucket)])
        .args(["--preset", "ultrafast", "--progress", "json"]);
    cmd
}

#[test]
fn a_bucket_commentary_cut_on_one_machine_resumes_on_another() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 6.0));
    let args = slow_last_line(tmp.path());
    let mut first = commentary_on_machine(&garage, &tmp.path().join("a"), &clip, "talks/one");
    first.args(&args);
    let cut = interrupt_after_first_chunk(first);
    assert!(
        String::from_utf8_lossy(&cut.stderr).contains(&format!(
            "s3://{}/talks/one/.vidpipe/commentary/state.json",
            garage.bucket
        )),
        "{}",
        String::from_utf8_lossy(&cut.stderr)
    );
    let stored = garage.objects("talks/one/chunks/");
    assert!(!stored.is_empty() && stored.len() < 3, "{stored:?}");
    let keys = garage.keys("talks/one/.vidpipe/");
    assert!(
        keys.contains(&"talks/one/.vidpipe/commentary/pcm/chunk_0000.f32".to_string()),
        "{keys:?}"
    );

    std::fs::write(tmp.path().join("fast-now"), "").expect("flag");
    let mut second = commentary_on_machine(&garage, &tmp.path().join("b"), &clip, "talks/one");
    second.args(&args);
    let o = run(&mut second);
    ok(&o);
    assert!(
        garage.stored_again(&stored).is_empty(),
        "chunks made on the first machine were stored again"
    );
    let first_status = events_of(&o, "status")
        .into_iter()
        .find(|e| e["stage"] == "chunks")
        .expect("chunks status");
    assert_eq!(first_status["done"].as_u64(), Some(stored.len() as u64));
    assert_eq!(events_of(&o, "chunk_ready").len(), 3);
    let keys = garage.keys("talks/one/");
    assert!(keys.iter().all(|k| !k.contains("/pcm/")), "{keys:?}");
    let local = tmp.path().join("download");
    garage.download("talks/one/", &local);
    decodes_cleanly(&local.join("commentary.mp4"));
    assert!(
        (stream_duration(&local.join("commentary.mp4"), "a:0") - 6.0).abs() < 0.05,
        "the joined audio lost or gained time"
    );

    // --state-dir keeps the state on this machine and nothing in the bucket.
    let mut local_state = commentary_on_machine(&garage, &tmp.path().join("c"), &clip, "talks/two");
    local_state.args(&args).args([
        "--state-dir",
        tmp.path().join("c-state").to_str().expect("utf8"),
    ]);
    ok(&run(&mut local_state));
    let keys = garage.keys("talks/two/");
    assert!(
        keys.contains(&"talks/two/commentary.mp4".to_string()),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| !k.contains(".vidpipe")), "{keys:?}");
    assert!(tmp
        .path()
        .join("c-state/s3")
        .join(&garage.bucket)
        .join("talks/two/.vidpipe/commentary/state.json")
        .is_file());
}

#[test]
fn settings_come_from_the_config_file_section() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 4.0));
    let script = write_script(tmp.path(), "- at: 0.5\n  text: one\n");
    let tts = tone_tts(tmp.path(), 0.5);
    let config = tmp.path().join("vidpipe.yaml");
    std::fs::write(
        &config,
        "commentary:\n  interval: 2s\n  voice-delay: 0.5\n  bogus: 1\n",
    )
    .expect("write config");
    let out = tmp.path().join("out");
    let args = [
        "--script",
        script.to_str().expect("utf8"),
        "--tts-cmd",
        &tts,
    ];
    let mut cmd = vidpipe();
    cmd.arg("--config").arg(&config);
    let o = run(cmd
        .arg("commentary")
        .arg(&clip)
        .arg("-o")
        .arg(&out)
        .args(args));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("vidpipe.yaml:4") && stderr.contains("bogus"),
        "{stderr}"
    );

    std::fs::write(&config, "commentary:\n  interval: 2s\n  voice-delay: 0.5\n").expect("write");
    let mut cmd = vidpipe();
    cmd.arg("--config").arg(&config);
    let o = run(cmd
        .arg("commentary")
        .arg(&clip)
        .arg("-o")
        .arg(&out)
        .args(["--preset", "ultrafast", "--progress", "json"])
        .args(args));
    ok(&o);
    assert_eq!(chunk_paths(&out).len(), 2);
    let onset = voice_onset(&mono_pcm(&out.join("commentary.mp4")), 0.6);
    assert!((onset - 1.0).abs() <= AAC_FRAME + 0.005, "onset {onset}");
}
