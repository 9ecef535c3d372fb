//! Where published files go.
//!
//! Jobs write through the small [`Destination`] trait so the same encode
//! can target a local directory (the embedded default, no server needed)
//! or, later, object storage. Paths are relative, `/`-separated keys.

use crate::fsutil;
use std::io;
use std::path::{Path, PathBuf};

/// A place that stores published files by relative key.
pub trait Destination: Send + Sync {
    /// Stores `bytes` under `key`, replacing it atomically: readers see the
    /// old object or the new one, never part of it.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;

    /// Whether `key` exists.
    fn exists(&self, key: &str) -> bool;

    /// Removes `key` if it exists.
    fn delete(&self, key: &str) -> io::Result<()>;

    /// Removes what an interrupted `put` under `prefix` may have left.
    fn remove_incomplete(&self, prefix: &str) -> io::Result<()>;

    /// A human-readable location for `key` (for messages and events).
    fn describe(&self, key: &str) -> String;
}

/// A local directory.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// A destination rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

impl Destination for LocalDir {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        fsutil::write_atomic(&path, bytes)
    }

    fn exists(&self, key: &str) -> bool {
        self.path(key).exists()
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn remove_incomplete(&self, prefix: &str) -> io::Result<()> {
        let root = self.path(prefix);
        if !root.is_dir() {
            return Ok(());
        }
        for entry in walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
        {
            if entry.file_type().is_dir() {
                fsutil::remove_partials(entry.path())?;
            }
        }
        Ok(())
    }

    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }
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
