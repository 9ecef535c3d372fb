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

    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }
}
