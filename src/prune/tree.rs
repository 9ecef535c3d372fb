//! What prune walks and deletes: a local directory or a bucket prefix,
//! behind one small trait.
//!
//! Keys are relative to the tree's top, `/`-separated. A walk streams the
//! entries (a bucket page by page), so a prefix of a million objects is
//! never held in memory at once. Removing a key that is already gone is
//! not an error: another prune may have been first.

use crate::storage::{ObjectInfo, S3Session};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One file (or symbolic link, never followed) under the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Last modification (a bucket: when the object was stored).
    pub modified: SystemTime,
}

/// What happened to one key a removal was asked for.
#[derive(Debug)]
pub enum Removal {
    /// It existed and is gone.
    Removed,
    /// It was gone already (another prune, the job itself).
    AlreadyGone,
    /// It could not be removed.
    Failed(String),
}

impl Removal {
    /// Whether the removal failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Removal::Failed(_))
    }
}

/// A tree of files prune can walk and delete from.
pub trait Tree: Send + Sync {
    /// A human-readable location for `key` (path or `s3://` URL).
    fn describe(&self, key: &str) -> String;

    /// Calls `visit` with every entry under the tree, in no particular
    /// order; stops at the first error (its own or `visit`'s). Entries the
    /// walk cannot read are passed to `problem` and skipped.
    fn walk(
        &self,
        visit: &mut dyn FnMut(Entry) -> io::Result<()>,
        problem: &mut dyn FnMut(String, String),
    ) -> io::Result<()>;

    /// The content of `key`.
    fn read(&self, key: &str) -> io::Result<Vec<u8>>;

    /// When `key` was last modified, `None` when it does not exist.
    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>>;

    /// Removes `keys` (at most [`batch`](Self::batch) of them), one
    /// result per key in the same order. Fails as a whole only when the
    /// tree cannot be reached at all.
    fn remove(&self, keys: &[String]) -> io::Result<Vec<Removal>>;

    /// How many keys one [`remove`](Self::remove) takes.
    fn batch(&self) -> usize;

    /// Removes what deleting left empty of the directories of `keys`,
    /// below the top (a local tree; buckets have no directories).
    fn tidy(&self, _keys: &[String]) {}
}

/// A local directory. Symbolic links are entries of their own: never
/// followed, at most removed themselves.
pub struct LocalTree {
    root: PathBuf,
}

impl LocalTree {
    /// The tree under `root`, which must be a directory.
    pub fn open(root: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(root)?;
        if !meta.is_dir() {
            return Err(io::Error::other("not a directory"));
        }
        Ok(LocalTree {
            root: root.to_path_buf(),
        })
    }

    /// The path of `key`, refusing keys that would leave the tree.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let relative = Path::new(key);
        if relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            Ok(self.root.join(relative))
        } else {
            Err(io::Error::other(format!("`{key}` is not inside the tree")))
        }
    }
}

impl Tree for LocalTree {
    fn describe(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn walk(
        &self,
        visit: &mut dyn FnMut(Entry) -> io::Result<()>,
        problem: &mut dyn FnMut(String, String),
    ) -> io::Result<()> {
        for item in walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .min_depth(1)
        {
            let item = match item {
                Ok(item) => item,
                // Gone meanwhile (another prune, the job itself).
                Err(e) if is_gone(e.io_error()) => continue,
                Err(e) => {
                    let at = e.path().unwrap_or(&self.root).display().to_string();
                    problem(at, e.io_error().map_or(e.to_string(), describe_io));
                    continue;
                }
            };
            if item.file_type().is_dir() {
                continue;
            }
            let Ok(relative) = item.path().strip_prefix(&self.root) else {
                continue;
            };
            let Some(key) = relative.to_str().map(|k| k.replace('\\', "/")) else {
                problem(
                    item.path().display().to_string(),
                    "the name is not UTF-8; left alone".into(),
                );
                continue;
            };
            // A link's own times, never its target's.
            let meta = match item.metadata() {
                Ok(meta) => meta,
                Err(e) if is_gone(e.io_error()) => continue,
                Err(e) => {
                    let reason = e.io_error().map_or(e.to_string(), describe_io);
                    problem(item.path().display().to_string(), reason);
                    continue;
                }
            };
            visit(Entry {
                key,
                bytes: meta.len(),
                modified: meta.modified()?,
            })?;
        }
        Ok(())
    }

    fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(key)?)
    }

    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>> {
        match std::fs::symlink_metadata(self.path(key)?) {
            Ok(meta) => meta.modified().map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove(&self, keys: &[String]) -> io::Result<Vec<Removal>> {
        Ok(keys
            .iter()
            .map(|key| match self.path(key).and_then(std::fs::remove_file) {
                Ok(()) => Removal::Removed,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Removal::AlreadyGone,
                Err(e) => Removal::Failed(describe_io(&e)),
            })
            .collect())
    }

    fn batch(&self) -> usize {
        256
    }

    fn tidy(&self, keys: &[String]) {
        let mut dirs: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.rfind('/').map(|i| &k[..i]))
            .collect();
        dirs.sort_unstable_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        dirs.dedup();
        for dir in dirs {
            // Upwards while empty; remove_dir refuses a directory that is
            // not, so a job writing into it meanwhile keeps it.
            let mut current = Some(dir);
            while let Some(d) = current {
                if self.path(d).and_then(std::fs::remove_dir).is_err() {
                    break;
                }
                current = d.rfind('/').map(|i| &d[..i]);
            }
        }
    }
}

fn is_gone(e: Option<&io::Error>) -> bool {
    e.is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// An I/O error in words, without Rust's `(os error N)`.
fn describe_io(e: &io::Error) -> String {
    crate::inputs::describe_io(e)
}

/// Objects under a bucket prefix.
pub struct BucketTree {
    session: Arc<S3Session>,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
}

impl BucketTree {
    /// The objects under `s3://bucket/prefix`.
    pub fn new(session: Arc<S3Session>, bucket: &str, prefix: &str) -> Self {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        BucketTree {
            session,
            bucket: bucket.to_string(),
            prefix,
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl Tree for BucketTree {
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full(key))
    }

    fn walk(
        &self,
        visit: &mut dyn FnMut(Entry) -> io::Result<()>,
        _problem: &mut dyn FnMut(String, String),
    ) -> io::Result<()> {
        self.session
            .list_pages(&self.bucket, &self.prefix, &mut |page: Vec<ObjectInfo>| {
                for object in page {
                    let Some(key) = object.key.strip_prefix(&self.prefix) else {
                        continue;
                    };
                    visit(Entry {
                        key: key.to_string(),
                        bytes: object.size,
                        // Unknown: as if just stored, so never too old.
                        modified: object.modified.unwrap_or_else(SystemTime::now),
                    })?;
                }
                Ok(())
            })
    }

    fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        self.session.get(&self.bucket, &self.full(key))
    }

    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>> {
        Ok(self
            .session
            .find(&self.bucket, &self.full(key))?
            .map(|o| o.modified.unwrap_or_else(SystemTime::now)))
    }

    fn remove(&self, keys: &[String]) -> io::Result<Vec<Removal>> {
        let full: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        let failures = self.session.delete_many(&self.bucket, &full)?;
        Ok(full
            .iter()
            .map(|key| match failures.iter().find(|(k, _)| k == key) {
                Some((_, reason)) => Removal::Failed(reason.clone()),
                // S3 does not say whether the key still existed.
                None => Removal::Removed,
            })
            .collect())
    }

    fn batch(&self) -> usize {
        1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(tree: &LocalTree) -> Vec<String> {
        let mut keys = Vec::new();
        tree.walk(
            &mut |e| {
                keys.push(e.key);
                Ok(())
            },
            &mut |at, why| panic!("{at}: {why}"),
        )
        .expect("walk");
        keys.sort();
        keys
    }

    #[test]
    fn a_local_walk_lists_links_as_entries_and_never_enters_them() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("precious.ts"), b"x").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/720p")).expect("mkdir");
        std::fs::write(dir.path().join("a/720p/seg_00000.ts"), b"seg").expect("write");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("a/link")).expect("link");
        let tree = LocalTree::open(dir.path()).expect("open");
        assert_eq!(keys(&tree), ["a/720p/seg_00000.ts", "a/link"]);
        let removed = tree
            .remove(&["a/link".into(), "a/gone.ts".into()])
            .expect("remove");
        assert!(matches!(
            removed[..],
            [Removal::Removed, Removal::AlreadyGone]
        ));
        assert!(outside.path().join("precious.ts").exists());
        assert!(tree.remove(&["../x".into()]).expect("remove")[0].is_failed());
    }

    #[test]
    fn tidying_removes_only_directories_left_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/720p")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("a/360p")).expect("mkdir");
        std::fs::write(dir.path().join("a/360p/seg_00000.ts"), b"seg").expect("write");
        let tree = LocalTree::open(dir.path()).expect("open");
        tree.tidy(&["a/720p/seg_00000.ts".into(), "a/360p/seg_00001.ts".into()]);
        assert!(!dir.path().join("a/720p").exists());
        assert!(dir.path().join("a/360p/seg_00000.ts").exists());
        assert!(dir.path().exists());
    }
}
