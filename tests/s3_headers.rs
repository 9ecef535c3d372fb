//! Every object vidpipe stores in a bucket carries the Content-Type and
//! Cache-Control of its kind: transcode-hls output (TS and fMP4), captions,
//! and upload-chunked files, with and without `--content-type`.

mod common;

use common::garage::Garage;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

const PLAYLIST: Option<&str> = Some("max-age=2");
const LONG: Option<&str> = Some("max-age=86400");

/// What a HEAD of an object with this extension must answer.
fn expected(extension: &str) -> (&'static str, Option<&'static str>) {
    match extension {
        "m3u8" => ("application/vnd.apple.mpegurl", PLAYLIST),
        "ts" => ("video/mp2t", LONG),
        "m4s" => ("video/iso.segment", LONG),
        "mp4" => ("video/mp4", LONG),
        "vtt" => ("text/vtt; charset=utf-8", LONG),
        "jpg" | "jpeg" => ("image/jpeg", LONG),
        "json" => ("application/json", LONG),
        other => panic!("vidpipe wrote an unexpected kind of object: .{other}"),
    }
}

/// HEADs every object under `prefix`, checks its headers against its
/// extension, and returns the extensions seen.
fn check_all(garage: &Garage, prefix: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for key in garage.keys(prefix) {
        let extension = key.rsplit_once('.').map_or("", |(_, e)| e).to_string();
        let (content_type, cache) = expected(&extension);
        assert_eq!(
            garage.headers(&key),
            (Some(content_type.to_string()), cache.map(str::to_string)),
            "{key}"
        );
        seen.insert(extension);
    }
    seen
}

fn transcode(garage: &Garage, state: &Path, clip: &Path, dest: &str, extra: &[&str]) {
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state)
        .arg("transcode-hls")
        .arg(clip)
        .args(["-o", dest])
        .args(["--preset", "ultrafast", "--segment-duration", "2", "-q"])
        .args(extra);
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn upload(garage: &Garage, state: &Path, file: &Path, key: &str, extra: &[&str]) {
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state)
        .arg("upload-chunked")
        .arg(file)
        .arg(format!("s3://{}/{key}", garage.bucket))
        .args(extra);
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn owned(pair: (&str, Option<&str>)) -> (Option<String>, Option<String>) {
    (Some(pair.0.to_string()), pair.1.map(str::to_string))
}

#[test]
fn transcode_and_captions_objects_carry_their_kinds_headers() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let clip = make_clip(tmp.path(), "clip.mp4", &ClipSpec::new(320, 240, 2.0));
    let bucket = &garage.bucket;
    transcode(&garage, &state, &clip, &format!("s3://{bucket}/ts"), &[]);
    let fmp4 = ["--segment-format", "fmp4"];
    transcode(
        &garage,
        &state,
        &clip,
        &format!("s3://{bucket}/fmp4"),
        &fmp4,
    );

    let srt = tmp.path().join("clip.en.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:01,500\nhello\n").expect("write");
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", &state)
        .arg("captions")
        .arg(&srt)
        .args(["-o", &format!("s3://{bucket}/ts/clip/subs")])
        .args(["--master", &format!("s3://{bucket}/ts/clip/master.m3u8")])
        .args(["--duration", "2", "-q"]);
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        garage
            .keys("ts/clip/subs/")
            .iter()
            .any(|k| k.ends_with(".m3u8")),
        "no captions playlist"
    );

    let mut seen = check_all(&garage, "ts/");
    seen.extend(check_all(&garage, "fmp4/"));
    for kind in ["m3u8", "ts", "m4s", "mp4", "vtt", "jpg"] {
        assert!(seen.contains(kind), "no .{kind} object: {seen:?}");
    }
}

#[test]
fn uploads_carry_a_type_by_extension_or_the_one_asked_for() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let small = tmp.path().join("movie.mp4");
    std::fs::write(&small, vec![7u8; 4096]).expect("write");
    let bin = tmp.path().join("data.bin");
    std::fs::write(&bin, vec![1u8; 4096]).expect("write");
    // Over one 5 MiB part: created with CreateMultipartUpload.
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, vec![3u8; 6 << 20]).expect("write");
    let parts = ["--part-size", "5MiB"];

    upload(&garage, &state, &small, "up/movie.mp4", &[]);
    assert_eq!(garage.headers("up/movie.mp4"), owned(expected("mp4")));

    upload(&garage, &state, &bin, "up/data.bin", &[]);
    assert_eq!(
        garage.headers("up/data.bin"),
        owned(("application/octet-stream", None))
    );
    upload(&garage, &state, &big, "up/big.bin", &parts);
    assert_eq!(
        garage.headers("up/big.bin"),
        owned(("application/octet-stream", None))
    );

    let forced = ["--content-type", "video/x-custom"];
    upload(&garage, &state, &bin, "up/forced.bin", &forced);
    assert_eq!(
        garage.headers("up/forced.bin"),
        owned(("video/x-custom", None))
    );
    upload(
        &garage,
        &state,
        &big,
        "up/forced-big.bin",
        &[&parts[..], &forced[..]].concat(),
    );
    assert_eq!(
        garage.headers("up/forced-big.bin"),
        owned(("video/x-custom", None))
    );
}
