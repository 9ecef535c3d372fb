//! Where published files go.
//!
//! Jobs write through the small [`Destination`] trait so the same encode
//! targets a local directory (the embedded default, no server needed) or an
//! S3-compatible bucket. Keys are relative, `/`-separated. [`Location`]
//! parses what the user typed as `DEST`, [`ObjectUrl`] one `s3://bucket/key`.
//! Every S3 write is retried by the one helper in [`retry`], and every
//! stored object carries the headers [`kind`] gives its key.

pub mod kind;
mod local;
mod location;
pub mod retry;
pub mod s3;

pub use local::LocalDir;
pub use location::{Location, ObjectUrl};
pub use retry::RetryPolicy;
pub use s3::{ObjectInfo, S3Dest, S3Options, S3Session};

use std::io;

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

    /// The keys of every stored file under `prefix` (a directory, ending in
    /// `/`), in no particular order; nothing when there is none.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;

    /// Removes what an interrupted `put` under `prefix` may have left.
    fn remove_incomplete(&self, prefix: &str) -> io::Result<()>;

    /// A human-readable location for `key` (for messages and events).
    fn describe(&self, key: &str) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

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
