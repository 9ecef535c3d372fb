//! Reading fragmented MP4 boxes directly: what a browser's MSE sees as a
//! fragment's first presentation time (the demuxer of the `ffprobe`
//! program shifts negative composition offsets away, so it cannot tell).

use std::path::Path;

/// Top-level and nested boxes of `bytes`: (type, body).
fn boxes(bytes: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let (header, size) = if size == 1 {
            let large = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().expect("8 bytes"));
            (16, large as usize)
        } else {
            (8, if size == 0 { bytes.len() - at } else { size })
        };
        assert!(size >= header && at + size <= bytes.len(), "bad box {kind}");
        out.push((kind, &bytes[at + header..at + size]));
        at += size;
    }
    out
}

/// The body of the first box on `path` (e.g. `["moov", "trak"]`).
fn find<'a>(bytes: &'a [u8], path: &[&str]) -> &'a [u8] {
    let mut body = bytes;
    for name in path {
        body = boxes(body)
            .into_iter()
            .find(|(kind, _)| kind == name)
            .unwrap_or_else(|| panic!("no {name} box"))
            .1;
    }
    body
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Seconds at which the first sample of `segment` is presented, with the
/// timescale from `init`: tfdt plus the first sample's composition offset
/// (signed in a version 1 trun). Also returns the offset alone.
pub fn first_presentation(init: &Path, segment: &Path) -> (f64, f64) {
    let init = std::fs::read(init).expect("read init");
    let mdhd = find(&init, &["moov", "trak", "mdia", "mdhd"]);
    let timescale = if mdhd[0] == 1 {
        be32(mdhd, 20)
    } else {
        be32(mdhd, 12)
    };
    let segment = std::fs::read(segment).expect("read segment");
    let tfdt = find(&segment, &["moof", "traf", "tfdt"]);
    let decode = if tfdt[0] == 1 {
        u64::from_be_bytes(tfdt[4..12].try_into().expect("8 bytes"))
    } else {
        u64::from(be32(tfdt, 4))
    };
    let trun = find(&segment, &["moof", "traf", "trun"]);
    let (version, flags) = (trun[0], be32(trun, 0) & 0x00ff_ffff);
    let mut at = 8; // version/flags, sample count
    if flags & 0x1 != 0 {
        at += 4; // data offset
    }
    if flags & 0x4 != 0 {
        at += 4; // first sample flags
    }
    for bit in [0x100, 0x200, 0x400] {
        if flags & bit != 0 {
            at += 4; // duration, size, flags of the first sample
        }
    }
    let offset = if flags & 0x800 == 0 {
        0i64
    } else if version == 1 {
        i64::from(be32(trun, at) as i32)
    } else {
        i64::from(be32(trun, at))
    };
    let scale = f64::from(timescale);
    (
        (decode as i64 + offset) as f64 / scale,
        offset as f64 / scale,
    )
}
