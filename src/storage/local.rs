//! The embedded default destination: a directory on this machine.

use super::Destination;
use crate::fsutil;
use std::io;
use std::path::{Path, PathBuf};

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

    fn put_all(&self, files: &[(String, Vec<u8>)]) -> io::Result<()> {
        let paths: Vec<PathBuf> = files.iter().map(|(key, _)| self.path(key)).collect();
        let mut parents: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
        parents.dedup();
        for parent in parents {
            std::fs::create_dir_all(parent)?;
        }
        fsutil::write_all_atomic(
            paths
                .iter()
                .map(PathBuf::as_path)
                .zip(files.iter().map(|(_, b)| b.as_slice())),
        )
    }

    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(key))
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

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir = self.path(prefix);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        // Links are not followed: a listing never reaches outside the root.
        for entry in walkdir::WalkDir::new(&dir) {
            let entry = entry.map_err(io::Error::other)?;
            if entry.file_type().is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(&self.root)
                    .map_err(io::Error::other)?;
                keys.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(keys)
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
