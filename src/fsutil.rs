//! Filesystem helpers shared by every job.
//!
//! Anything a player or a resumed run reads (playlists, checkpoints,
//! segments) is written to a temp file beside its final path and renamed
//! into place, so a reader sees either the old complete file or the new
//! complete file, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// Writes many files atomically with one sync for all of them: every temp
/// file is written, the filesystem synced once, then each is renamed into
/// place. A crash leaves complete files or temp files, never torn ones.
pub fn write_all_atomic<'a>(
    files: impl Iterator<Item = (&'a Path, &'a [u8])> + Clone,
) -> io::Result<()> {
    let result = (|| {
        let mut last = None;
        for (path, bytes) in files.clone() {
            let mut file = fs::File::create(partial_path(path))?;
            file.write_all(bytes)?;
            last = Some(file);
        }
        if let Some(file) = last {
            sync_filesystem(&file)?;
        }
        files
            .clone()
            .try_for_each(|(path, _)| fs::rename(partial_path(path), path))
    })();
    if result.is_err() {
        for (path, _) in files {
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
