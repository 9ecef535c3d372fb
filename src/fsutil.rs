//! Filesystem helpers shared by every job.
//!
//! Anything a player or a resumed run reads (playlists, checkpoints,
//! segments) is written to a temp file beside its final path and renamed
//! into place, so a reader sees either the old complete file or the new
//! complete file, never a torn one.
//!
//! Scratch (local copies of remote inputs, a pipeline's per-input files)
//! lives in the temp dir and is removed when its owner is dropped; the
//! owners also register it here, so a process that exits at once (a second
//! Ctrl-C) removes it with [`remove_scratch`].

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Scratch files and directories on disk now, for [`remove_scratch`].
static SCRATCH: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn scratch() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers scratch at `path` (a file or a directory) for [`remove_scratch`].
pub fn track_scratch(path: &Path) {
    scratch().push(path.to_path_buf());
}

/// Forgets scratch at `path`: its owner removes it.
pub fn untrack_scratch(path: &Path) {
    scratch().retain(|p| p != path);
}

/// Removes every registered scratch file and directory, for a process
/// about to exit without unwinding: nothing else would.
pub fn remove_scratch() {
    for path in scratch().drain(..) {
        if path.is_dir() {
            let _ = fs::remove_dir_all(path);
        } else {
            let _ = fs::remove_file(path);
        }
    }
}

/// A scratch directory in the temp dir, removed with everything in it when
/// dropped (or by [`remove_scratch`]).
#[derive(Debug)]
pub struct ScratchDir {
    dir: tempfile::TempDir,
}

impl ScratchDir {
    /// A new directory named `<prefix>XXXXXX`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        track_scratch(dir.path());
        Ok(ScratchDir { dir })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        untrack_scratch(self.dir.path());
    }
}

/// Suffix of the temp file written before an atomic rename.
pub const PARTIAL_SUFFIX: &str = ".part";

/// Writes `bytes` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = partial_path(path);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes many files with one sync for all of them, never exposing a torn
/// file under a name a reader already knows: a file that does not exist
/// yet is created in place (nothing can refer to it before this returns;
/// callers publish references, such as playlists, afterwards), an existing
/// one is replaced through a temp file and a rename after the sync. A crash
/// leaves old files intact; a new file it tore is replaced on the next
/// write.
pub fn write_all_atomic<'a>(
    files: impl Iterator<Item = (&'a Path, &'a [u8])> + Clone,
) -> io::Result<()> {
    let mut replaced: Vec<&Path> = Vec::new();
    let result = (|| {
        let mut last = None;
        for (path, bytes) in files.clone() {
            let mut file = match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    replaced.push(path);
                    fs::File::create(partial_path(path))?
                }
                Err(e) => return Err(e),
            };
            file.write_all(bytes)?;
            last = Some(file);
        }
        if let Some(file) = last {
            sync_filesystem(&file)?;
        }
        replaced
            .iter()
            .try_for_each(|path| fs::rename(partial_path(path), path))
    })();
    if result.is_err() {
        for path in &replaced {
            let _ = fs::remove_file(partial_path(path));
        }
    }
    result
}

/// Flushes every written file of the filesystem holding `file` (syncfs),
/// which costs one flush however many files a batch wrote.
fn sync_filesystem(file: &fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The temp path used while `path` is being written.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PARTIAL_SUFFIX);
    path.with_file_name(name)
}

/// Removes temp files left in `dir` by a run that was killed mid-write.
pub fn remove_partials(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(PARTIAL_SUFFIX) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_atomic_creates_new_files_and_replaces_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, new) = (dir.path().join("a.vtt"), dir.path().join("b.vtt"));
        std::fs::write(&old, b"old content, longer").expect("write");
        let files = [
            (old.as_path(), b"A".as_slice()),
            (new.as_path(), b"B".as_slice()),
        ];
        write_all_atomic(files.iter().copied()).expect("write all");
        assert_eq!(std::fs::read(&old).expect("read"), b"A");
        assert_eq!(std::fs::read(&new).expect("read"), b"B");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(names.len(), 2, "no temp file left");
        let missing = dir.path().join("no/such/dir.vtt");
        let files = [(missing.as_path(), b"x".as_slice())];
        assert!(write_all_atomic(files.iter().copied()).is_err());
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.m3u8");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second version").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"second version");
        assert!(!partial_path(&path).exists());
    }

    #[test]
    fn remove_partials_keeps_complete_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("seg_00001.ts"), b"x").expect("write");
        fs::write(dir.path().join("seg_00002.ts.part"), b"x").expect("write");
        remove_partials(dir.path()).expect("clean");
        assert!(dir.path().join("seg_00001.ts").exists());
        assert!(!dir.path().join("seg_00002.ts.part").exists());
    }
}
