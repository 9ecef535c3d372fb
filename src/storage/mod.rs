//! Where published files go.
//!
//! Jobs write through the small [`Destination`] trait so the same encode
//! targets a local directory (the embedded default, no server needed) or an
//! S3-compatible bucket. Keys are relative, `/`-separated. [`Location`]
//! parses what the user typed as `DEST`. Every S3 write is retried by the
//! one helper in [`retry`].

mod local;
pub mod retry;
pub mod s3;

pub use local::LocalDir;
pub use retry::RetryPolicy;
pub use s3::{ObjectInfo, S3Dest, S3Options, S3Session};

use std::io;
use std::path::PathBuf;

/// A place that stores published files by relative key.
pub trait Destination: Send + Sync {
    /// Stores `bytes` under `key`, replacing it atomically: readers see the
    /// old object or the new one, never part of it.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;

    /// Stores many small files, each atomically like [`put`](Self::put);
    /// backends override it to batch the work (one sync for a directory,
    /// concurrent PUTs for a bucket). Stops at the first failure; files
    /// stored before it stay.
    fn put_all(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        files
            .iter()
            .try_for_each(|(key, bytes)| self.put(key, bytes))
    }

    /// The content of `key`.
    fn get(&self, key: &str) -> io::Result<Vec<u8>>;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> bool;

    /// Removes `key` if it exists.
    fn delete(&self, key: &str) -> io::Result<()>;

    /// Removes what an interrupted `put` under `prefix` may have left.
    fn remove_incomplete(&self, prefix: &str) -> io::Result<()>;

    /// A human-readable location for `key` (for messages and events).
    fn describe(&self, key: &str) -> String;
}

/// A `DEST` argument: a local directory or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Local(PathBuf),
    /// A bucket and a key prefix (empty, or ending in `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, empty or ending in `/`.
        prefix: String,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a local path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("s3://") else {
            if text.contains("://") {
                return Err(format!(
                    "`{text}`: only local paths and s3:// URLs are supported"
                ));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid {
            return Err(format!("`{text}`: `{bucket}` is not a valid bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(Location::parse("out"), Ok(Location::Local("out".into())));
        assert_eq!(
            Location::parse("s3://media/vod/2024/"),
            Ok(Location::S3 {
                bucket: "media".into(),
                prefix: "vod/2024/".into()
            })
        );
        assert_eq!(
            Location::parse("s3://media"),
            Ok(Location::S3 {
                bucket: "media".into(),
                prefix: String::new()
            })
        );
        assert!(Location::parse("s3://Bad_Bucket/x").is_err());
        assert!(Location::parse("ftp://host/x").is_err());
    }

    #[test]
    fn remove_incomplete_cleans_every_level_below_the_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = LocalDir::new(dir.path());
        dest.put("clip/720p/seg_00000.ts", b"done").expect("put");
        std::fs::write(dir.path().join("clip/720p/seg_00001.ts.part"), b"torn").expect("write");
        std::fs::write(dir.path().join("clip/master.m3u8.part"), b"torn").expect("write");
        dest.remove_incomplete("clip/").expect("clean");
        assert!(dest.exists("clip/720p/seg_00000.ts"));
        assert!(!dir.path().join("clip/720p/seg_00001.ts.part").exists());
        assert!(!dir.path().join("clip/master.m3u8.part").exists());
    }
}
