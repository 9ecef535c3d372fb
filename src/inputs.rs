//! Turning command-line inputs into a batch.
//!
//! Arguments may be files, directories (walked recursively for video
//! files) or http(s) URLs. Each becomes an [`InputItem`] with a unique
//! output name (its stem). Problems with one argument (missing path,
//! unreadable directory) are returned as failures for that argument so the
//! rest of the batch still runs. `--shard K/N` keeps a deterministic share.

use std::collections::HashSet;
use std::path::Path;

/// File extensions treated as video when walking directories.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv",
    "3gp", "mxf", "ogv",
];

/// One input of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct InputItem {
    /// What libav opens: a path or a URL.
    pub source: String,
    /// Output directory name, unique within the batch.
    pub stem: String,
    /// Identity for checkpoints: path + size + mtime, or the URL.
    pub identity: String,
}

/// An argument that could not become an input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputProblem {
    /// The argument or the path found under it.
    pub source: String,
    /// Why it was skipped.
    pub reason: String,
}

/// `--shard K/N`: this machine takes every input whose position modulo N
/// is K-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index of this shard.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parses `K/N` with 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}` must look like K/N, e.g. 2/4"))?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: `{k}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: `{n}` is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard `{text}`: need 1 ≤ K ≤ N"));
        }
        Ok(Shard { index, count })
    }

    /// Whether the input at `position` belongs to this shard.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

/// Expands arguments into inputs and problems, in argument order
/// (directory contents sorted by path).
pub fn expand(args: &[String]) -> (Vec<InputItem>, Vec<InputProblem>) {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();
    for arg in args {
        if crate::media::is_url(arg) {
            found.push((arg.clone(), arg.clone()));
            continue;
        }
        if arg.contains("://") {
            problems.push(InputProblem {
                source: arg.clone(),
                reason: "unsupported URL scheme (use a path or an http(s) URL)".into(),
            });
            continue;
        }
        let path = Path::new(arg);
        match std::fs::metadata(path) {
            Err(e) => problems.push(InputProblem {
                source: arg.clone(),
                reason: io_reason(&e),
            }),
            Ok(meta) if meta.is_dir() => walk(path, &mut found, &mut problems),
            Ok(meta) => found.push((arg.clone(), file_identity(path, &meta))),
        }
    }
    let mut stems = HashSet::new();
    let items = found
        .into_iter()
        .map(|(source, identity)| {
            let base = stem_of(&source);
            let mut stem = base.clone();
            let mut n = 2;
            while !stems.insert(stem.clone()) {
                stem = format!("{base}-{n}");
                n += 1;
            }
            InputItem {
                source,
                stem,
                identity,
            }
        })
        .collect();
    (items, problems)
}

fn walk(dir: &Path, found: &mut Vec<(String, String)>, problems: &mut Vec<InputProblem>) {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Err(e) => problems.push(InputProblem {
                source: e.path().unwrap_or(dir).display().to_string(),
                reason: e.io_error().map(io_reason).unwrap_or_else(|| e.to_string()),
            }),
            Ok(entry) if entry.file_type().is_file() && is_video_name(entry.path()) => {
                if let Ok(meta) = entry.metadata() {
                    files.push((
                        entry.path().display().to_string(),
                        file_identity(entry.path(), &meta),
                    ));
                }
            }
            Ok(_) => {}
        }
    }
    found.extend(files);
}

fn is_video_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn file_identity(path: &Path, meta: &std::fs::Metadata) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}|{}|{}", canonical.display(), meta.len(), mtime)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Output name for an input: the file stem, or the last URL path segment.
pub fn stem_of(source: &str) -> String {
    let trimmed = source
        .split(['?', '#'])
        .next()
        .unwrap_or(source)
        .trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let stem = Path::new(last)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        "video".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_from_paths_and_urls() {
        assert_eq!(stem_of("clips/My Clip.mp4"), "My_Clip");
        assert_eq!(stem_of("https://example.test/a/b/talk.mkv?token=1"), "talk");
        assert_eq!(stem_of("https://example.test/"), "example");
    }

    #[test]
    fn directories_are_walked_and_stems_made_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a.mp4"), b"x").expect("write");
        std::fs::write(dir.path().join("sub/a.MOV"), b"x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        let (items, problems) = expand(&[dir.path().display().to_string()]);
        assert!(problems.is_empty());
        let stems: Vec<_> = items.iter().map(|i| i.stem.as_str()).collect();
        assert_eq!(stems, vec!["a", "a-2"]);
    }

    #[test]
    fn missing_paths_are_problems_not_panics() {
        let (items, problems) = expand(&["/no/such/file.mp4".to_string()]);
        assert!(items.is_empty());
        assert_eq!(problems[0].reason, "no such file or directory");
    }

    #[test]
    fn shards_split_deterministically() {
        let s = Shard::parse("2/3").expect("parse");
        let taken: Vec<usize> = (0..7).filter(|&i| s.takes(i)).collect();
        assert_eq!(taken, vec![1, 4]);
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x").is_err());
    }
}
