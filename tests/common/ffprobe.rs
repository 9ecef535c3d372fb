//! Checks by the `ffprobe` and `ffmpeg` programs, independent peers of
//! vidpipe's libav code: stream facts, first packets, full decodes.

use super::run;
use std::path::Path;
use std::process::Command;

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
