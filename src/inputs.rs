//! Turning command-line inputs into a batch.
//!
//! Arguments may be files, directories (walked recursively for video
//! files), http(s) URLs, or `s3://bucket/key` objects and
//! `s3://bucket/prefix/` listings, which libav reads as a stream through a
//! presigned URL. Each becomes an [`InputItem`] with a unique output name
//! (its stem). Problems with one argument (missing path,
//! unreadable directory) are returned as failures for that argument so the
//! rest of the batch still runs. `--shard K/N` keeps a deterministic share.
//! Before a job decodes an input, [`readable`] makes sure libav can read
//! it the way the job needs: an http(s) URL on a server that ignores Range
//! requests, holding an MP4 with its index last, is read through a local
//! scratch copy.

use crate::media::remote::{RemoteError, RemoteInput, ScratchCopy};
use crate::progress::{Event, Reporter};
use crate::storage::S3Session;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long a presigned input URL stays valid: longer than any encode.
const PRESIGNED_FOR: Duration = Duration::from_secs(24 * 3600);

/// An input found while expanding, before stems are assigned.
struct Found {
    source: String,
    open: String,
    identity: String,
    object: Option<(String, String)>,
}

impl Found {
    fn local(source: String, identity: String) -> Self {
        Found {
            open: source.clone(),
            source,
            identity,
            object: None,
        }
    }
}

/// File extensions treated as video when walking directories.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv",
    "3gp", "mxf", "ogv",
];

/// One input of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct InputItem {
    /// The input as the user knows it: path, URL or `s3://` URL (safe to
    /// print).
    pub source: String,
    /// What libav opens: the path or URL itself, or a presigned URL for an
    /// `s3://` object (a bearer token: never printed).
    pub open: String,
    /// Bucket and key of an `s3://` input.
    pub object: Option<(String, String)>,
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

/// An input as libav opens it during one job: the path or URL itself, or a
/// local copy of a URL, removed from disk when this is dropped.
#[derive(Debug)]
pub struct Readable {
    open: String,
    /// Kept only so the copy lives as long as the job reads it.
    _copy: Option<ScratchCopy>,
}

impl Readable {
    /// What libav opens.
    pub fn open(&self) -> &str {
        &self.open
    }
}

/// Makes an input readable for a job that decodes it (probe, transcode,
/// commentary). `source` is the input as the user named it, `open` what
/// libav opens for it ([`InputItem`]). Files and `s3://` objects (whose
/// servers honour Range) are opened as they are. An http(s) URL is asked
/// once: on a server that ignores Range requests, an MP4/QuickTime file
/// whose index comes last is copied to the temp dir first, with a warning,
/// since demuxing it needs seeks such a server cannot serve.
pub fn readable(
    open: &str,
    source: &str,
    reporter: &dyn Reporter,
    cancel: &AtomicBool,
) -> Result<Readable, RemoteError> {
    let direct = || Readable {
        open: open.to_string(),
        _copy: None,
    };
    if !crate::media::is_url(source) {
        return Ok(direct());
    }
    let mut remote = RemoteInput::connect(open, cancel)?;
    if remote.honours_range() || !remote.needs_seeking()? {
        return Ok(direct());
    }
    reporter.report(Event::Warning {
        input: source.to_string(),
        message: "the server ignores Range requests; reading it through a local copy".into(),
    });
    let copy = remote.save()?;
    tracing::debug!("{source}: copied to {}", copy.path().display());
    Ok(Readable {
        open: copy.path().to_string_lossy().into_owned(),
        _copy: Some(copy),
    })
}

/// Expands arguments into inputs and problems, in argument order
/// (directory contents sorted by path). `s3` is needed for `s3://` inputs.
pub fn expand(args: &[String], s3: Option<&S3Session>) -> (Vec<InputItem>, Vec<InputProblem>) {
    let mut found: Vec<Found> = Vec::new();
    let mut problems = Vec::new();
    let problem = |problems: &mut Vec<InputProblem>, source: &str, reason: String| {
        problems.push(InputProblem {
            source: source.to_string(),
            reason,
        })
    };
    for arg in args {
        if crate::media::is_url(arg) {
            found.push(Found::local(arg.clone(), arg.clone()));
            continue;
        }
        if arg.starts_with("s3://") {
            let url = match crate::storage::ObjectUrl::parse(arg) {
                Ok(url) => url,
                Err(reason) => {
                    problem(&mut problems, arg, reason);
                    continue;
                }
            };
            match s3 {
                Some(session) => match expand_s3(session, &url) {
                    Ok(objects) if objects.is_empty() => {
                        problem(&mut problems, arg, "no video objects there".into())
                    }
                    Ok(objects) => found.extend(objects),
                    Err(e) => problem(&mut problems, arg, e.to_string()),
                },
                None => problem(&mut problems, arg, "no S3 connection".into()),
            }
            continue;
        }
        if arg.contains("://") {
            let reason = "unsupported URL scheme (use a path, an http(s) URL or s3://)";
            problem(&mut problems, arg, reason.into());
            continue;
        }
        let path = Path::new(arg);
        match std::fs::metadata(path) {
            Err(e) => problem(&mut problems, arg, io_reason(&e)),
            Ok(meta) if meta.is_dir() => walk(path, &mut found, &mut problems),
            Ok(meta) => found.push(Found::local(arg.clone(), file_identity(path, &meta))),
        }
    }
    let mut stems = HashSet::new();
    let items = found
        .into_iter()
        .map(|f| {
            let base = stem_of(&f.source);
            let mut stem = base.clone();
            let mut n = 2;
            while !stems.insert(stem.clone()) {
                stem = format!("{base}-{n}");
                n += 1;
            }
            InputItem {
                source: f.source,
                open: f.open,
                object: f.object,
                stem,
                identity: f.identity,
            }
        })
        .collect();
    (items, problems)
}

/// One video object, or a prefix listing videos.
fn expand_s3(session: &S3Session, url: &crate::storage::ObjectUrl) -> std::io::Result<Vec<Found>> {
    let bucket = url.bucket.as_str();
    let objects = if is_video_name(Path::new(&url.key)) {
        vec![session.head(bucket, &url.key)?]
    } else {
        session
            .list(bucket, &url.as_prefix())?
            .into_iter()
            .filter(|o| is_video_name(Path::new(&o.key)))
            .collect()
    };
    objects
        .into_iter()
        .map(|o| {
            let source = format!("s3://{bucket}/{}", o.key);
            Ok(Found {
                open: session.presign_get(bucket, &o.key, PRESIGNED_FOR)?,
                identity: format!("{source}|{}|{}", o.size, o.etag.as_deref().unwrap_or("")),
                object: Some((bucket.to_string(), o.key)),
                source,
            })
        })
        .collect()
}

fn walk(dir: &Path, found: &mut Vec<Found>, problems: &mut Vec<InputProblem>) {
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
                    let source = entry.path().display().to_string();
                    found.push(Found::local(source, file_identity(entry.path(), &meta)));
                }
            }
            Ok(_) => {}
        }
    }
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

/// A short reason for an I/O error on an input ("permission denied").
pub fn describe_io(e: &std::io::Error) -> String {
    io_reason(e)
}

fn io_reason(e: &std::io::Error) -> String {
    if e.get_ref().is_some() {
        // An error made with its own words (e.g. "no such bucket `b`").
        return e.to_string();
    }
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
        let (items, problems) = expand(&[dir.path().display().to_string()], None);
        assert!(problems.is_empty());
        let stems: Vec<_> = items.iter().map(|i| i.stem.as_str()).collect();
        assert_eq!(stems, vec!["a", "a-2"]);
    }

    #[test]
    fn missing_paths_are_problems_not_panics() {
        let (items, problems) = expand(&["/no/such/file.mp4".to_string()], None);
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
