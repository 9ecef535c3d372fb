//! Reading a remote input once for every step that decodes it.
//!
//! A bucket object is copied into local scratch with parallel ranged GETs
//! (each sent with `If-Match` on the ETag the HEAD gave, so an object
//! replaced midway fails rather than mixing versions), then checked: its
//! size, and its ETag where the ETag is a digest of the content (the MD5
//! of an object stored in one PUT, or the MD5 of its parts' MD5s for a
//! multipart upload whose part size the server tells). The copy takes the
//! object's modification time.

use crate::storage::{ObjectInfo, S3Session};
use md5::{Digest, Md5};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Bytes per ranged GET.
pub const RANGE: u64 = 8 << 20;

/// Ranged GETs in flight at once.
pub const IN_FLIGHT: usize = 4;

/// Why a remote input could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// Reading the object or writing the copy failed.
    #[error("cannot fetch it: {0}")]
    Io(String),
    /// The copy is not the object.
    #[error("the copy does not match the object: {0}")]
    Mismatch(String),
}

impl From<io::Error> for FetchError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::Interrupted {
            FetchError::Interrupted
        } else {
            FetchError::Io(e.to_string())
        }
    }
}

/// Copies `s3://bucket/key` to `to` and checks the copy; returns what the
/// server said of the object.
pub fn fetch_object(
    session: &S3Session,
    (bucket, key): (&str, &str),
    to: &Path,
    cancel: &AtomicBool,
) -> Result<ObjectInfo, FetchError> {
    let info = session.head(bucket, key)?;
    let file = std::fs::File::create(to)?;
    file.set_len(info.size)?;
    session.get_ranges(
        bucket,
        key,
        (info.size, info.etag.as_deref()),
        (RANGE, IN_FLIGHT),
        &mut |offset, bytes| file.write_all_at(bytes, offset),
        cancel,
    )?;
    file.sync_data()?;
    check_copy(to, &info, || session.first_part_size(bucket, key))?;
    if let Some(modified) = info.modified {
        file.set_modified(modified)?;
    }
    Ok(info)
}

/// Checks the copy at `path` against the object's size and, where it is a
/// digest of the content, its ETag. `part_size` is asked only for a
/// multipart ETag.
fn check_copy(
    path: &Path,
    info: &ObjectInfo,
    part_size: impl FnOnce() -> Option<u64>,
) -> Result<(), FetchError> {
    let len = std::fs::metadata(path)?.len();
    if len != info.size {
        return Err(FetchError::Mismatch(format!(
            "{len} bytes copied of {}",
            info.size
        )));
    }
    let Some(etag) = info.etag.as_deref().map(|e| e.trim_matches('"')) else {
        return Ok(());
    };
    let expected = match etag.split_once('-') {
        None if is_md5_hex(etag) => etag_of(path, info.size.max(1))?,
        Some((digest, parts)) if is_md5_hex(digest) => {
            let Some(part) = part_size().filter(|&p| p > 0) else {
                tracing::debug!(
                    "{}: part size unknown; checked by size only",
                    path.display()
                );
                return Ok(());
            };
            let computed = etag_of(path, part)?;
            if parts.parse::<u64>().ok() != Some(info.size.div_ceil(part)) {
                return Err(FetchError::Mismatch(format!(
                    "ETag {etag} does not fit {} parts of {part} bytes",
                    info.size.div_ceil(part)
                )));
            }
            computed
        }
        // Another server's ETag scheme: the size has to do.
        _ => return Ok(()),
    };
    if expected.split('-').next() == etag.split('-').next() {
        Ok(())
    } else {
        Err(FetchError::Mismatch(format!(
            "MD5 {expected} against ETag {etag}"
        )))
    }
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The S3 ETag of the file read in parts of `part` bytes: the MD5 of the
/// whole when it is one part, else the MD5 of the parts' MD5s and `-N`.
fn etag_of(path: &Path, part: u64) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut digests = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut md5 = Md5::new();
        let mut read = 0u64;
        while read < part {
            let want = buf
                .len()
                .min(usize::try_from(part - read).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            read += n as u64;
        }
        // The end fell on a part boundary: no empty last part.
        if read == 0 && !digests.is_empty() {
            break;
        }
        digests.push(md5.finalize());
        if read < part {
            break;
        }
    }
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    Ok(match digests.as_slice() {
        [one] => hex(one),
        parts => {
            let mut md5 = Md5::new();
            parts.iter().for_each(|d| md5.update(d));
            format!("{}-{}", hex(&md5.finalize()), parts.len())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_md5(bytes: &[u8]) -> String {
        Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn info(size: u64, etag: &str) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size,
            etag: Some(format!("\"{etag}\"")),
            modified: None,
        }
    }

    #[test]
    fn single_and_multipart_etags_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("copy");
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).expect("write");
        let size = body.len() as u64;
        assert!(check_copy(&path, &info(size, &hex_md5(&body)), || None).is_ok());
        let wrong = hex_md5(b"other");
        assert!(matches!(
            check_copy(&path, &info(size, &wrong), || None),
            Err(FetchError::Mismatch(_))
        ));
        // Parts of 4000 bytes: 4000 + 4000 + 2000.
        let parts: Vec<u8> = body
            .chunks(4000)
            .flat_map(|c| Md5::digest(c).to_vec())
            .collect();
        let multipart = format!("{}-3", hex_md5(&parts));
        assert!(check_copy(&path, &info(size, &multipart), || Some(4000)).is_ok());
        assert!(check_copy(&path, &info(size, &multipart), || Some(5000)).is_err());
        // Unknown part size or another ETag scheme: the size decides.
        assert!(check_copy(&path, &info(size, &multipart), || None).is_ok());
        assert!(check_copy(&path, &info(size, "opaque-etag"), || None).is_ok());
        assert!(matches!(
            check_copy(&path, &info(size + 1, "opaque"), || None),
            Err(FetchError::Mismatch(_))
        ));
    }

    #[test]
    fn an_empty_object_has_the_md5_of_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty");
        std::fs::write(&path, b"").expect("write");
        assert_eq!(etag_of(&path, 1).expect("etag"), hex_md5(b""));
    }
}
