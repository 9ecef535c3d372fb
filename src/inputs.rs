//! Turning command-line inputs into a batch.
//!
//! Arguments may be files, directories (walked recursively for video
//! files), http(s) URLs, or `s3://bucket/key` objects and
//! `s3://bucket/prefix/` listings, which libav reads as a stream through a
//! presigned URL. Each becomes an [`InputItem`] with a unique output name
//! (its stem). Problems with one argument (missing path,
//! unreadable directory) are returned as failures for that argument so the
//! rest of the batch still runs. `--shard K/N` keeps the inputs whose
//! [`InputItem::name`] hashes to shard K ([`Shard`]): a split that depends
//! on each input's own name only.
//! Before a job decodes an input, [`readable`] makes sure libav can read
//! it the way the job needs: an http(s) URL on a server that ignores Range
//! requests, holding an MP4 with its index last, is read through a local
//! scratch copy.

use crate::media::remote::{RemoteError, RemoteInput, ScratchCopy};
use crate::storage::S3Session;
use serde::Serialize;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long a presigned input URL stays valid: longer than any encode.
const PRESIGNED_FOR: Duration = Duration::from_secs(24 * 3600);

/// An input found while expanding, before stems are assigned.
struct Found {
    source: String,
    name: String,
    open: String,
    identity: String,
    object: Option<(String, String)>,
}

impl Found {
    fn local(source: String, name: String, identity: String) -> Self {
        Found {
            open: source.clone(),
            source,
            name,
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
    /// The name `--shard` hashes: the path below the directory argument it
    /// was found in, a file argument's file name, the key below an
    /// `s3://bucket/prefix/` listing, or the last path component of a
    /// single `s3://` object or URL.
    pub name: String,
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

/// `--shard K/N`: this machine takes every input whose name hashes to
/// shard K (see [`Shard::of_name`]), so the split depends on nothing but
/// the names: not on the order inputs are listed in, and adding an input
/// never moves another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index of this shard.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

/// A scheduler whose array tasks `--shard auto` recognises.
struct Scheduler {
    /// The variable holding this task's index.
    index: &'static str,
    /// Whether that index counts from 0 (else Slurm's from
    /// `SLURM_ARRAY_TASK_MIN`).
    from_zero: bool,
    /// The variables that may hold the number of tasks (the first set
    /// wins).
    count: &'static [&'static str],
    /// What else it needs, for the message when none is found.
    needs: &'static str,
}

/// The number of shards, for schedulers whose environment gives only the
/// index.
const SHARD_COUNT: &str = "VIDPIPE_SHARD_COUNT";

/// Where `--shard auto` looks, in this order.
const SCHEDULERS: &[Scheduler] = &[
    Scheduler {
        index: "SLURM_ARRAY_TASK_ID",
        from_zero: false,
        count: &["SLURM_ARRAY_TASK_COUNT"],
        needs: "Slurm, with SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT",
    },
    Scheduler {
        index: "JOB_COMPLETION_INDEX",
        from_zero: true,
        count: &[SHARD_COUNT],
        needs: "Kubernetes Indexed Job, with VIDPIPE_SHARD_COUNT",
    },
    Scheduler {
        index: "AWS_BATCH_JOB_ARRAY_INDEX",
        from_zero: true,
        count: &["AWS_BATCH_JOB_ARRAY_SIZE", SHARD_COUNT],
        needs: "AWS Batch, with AWS_BATCH_JOB_ARRAY_SIZE or VIDPIPE_SHARD_COUNT",
    },
];

impl Shard {
    /// Parses `K/N` with 1 ≤ K ≤ N, or `auto`: the array index and size of
    /// the scheduler running this process ([`Shard::from_env`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_with(text, |name| std::env::var(name).ok())
    }

    /// [`Shard::parse`] with `env` looking up environment variables.
    pub fn parse_with(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("auto") {
            return Self::from_env(env);
        }
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard `{text}` must look like K/N, e.g. 2/4, or be auto"))?;
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

    /// `--shard auto`: this task's place in a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`, divided by
    /// `SLURM_ARRAY_TASK_STEP` when set, + 1 of `SLURM_ARRAY_TASK_COUNT`),
    /// a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` + 1 of
    /// `VIDPIPE_SHARD_COUNT`) or an AWS Batch array job
    /// (`AWS_BATCH_JOB_ARRAY_INDEX` + 1 of `AWS_BATCH_JOB_ARRAY_SIZE`, else
    /// `VIDPIPE_SHARD_COUNT`). The first index variable set decides.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let Some(scheduler) = SCHEDULERS.iter().find(|s| set(s.index).is_some()) else {
            let looked: Vec<String> = SCHEDULERS
                .iter()
                .map(|s| format!("{} ({})", s.index, s.needs))
                .collect();
            return Err(format!(
                "auto: not an array task: none of {} is set; give K/N instead",
                looked.join(", ")
            ));
        };
        let index_var = scheduler.index;
        let raw = whole_number(index_var, &set)?.unwrap_or_default();
        let Some(count_var) = scheduler.count.iter().find(|var| set(var).is_some()) else {
            return Err(format!(
                "auto: {index_var} is set but {} is not: set it to the number of tasks",
                scheduler.count.join(" or ")
            ));
        };
        let count = whole_number(count_var, &set)?.unwrap_or_default();
        if count == 0 {
            return Err(format!("auto: {count_var} is 0"));
        }
        let offset = if scheduler.from_zero {
            raw
        } else {
            slurm_offset(raw, &set)?
        };
        if offset >= count {
            return Err(format!(
                "auto: {index_var}={raw} is task {} but {count_var}={count}",
                offset + 1
            ));
        }
        Ok(Shard {
            index: offset + 1,
            count,
        })
    }

    /// The shard (1-based) of `count` that the input named `name` belongs
    /// to: FNV-1a 64 of its UTF-8 bytes, modulo `count`, plus 1.
    pub fn of_name(name: &str, count: usize) -> usize {
        (fnv1a64(name.as_bytes()) % count.max(1) as u64) as usize + 1
    }

    /// Whether the input named `name` (see [`InputItem::name`]) belongs to
    /// this shard.
    pub fn takes(&self, name: &str) -> bool {
        Self::of_name(name, self.count) == self.index
    }

    /// Keeps this shard's items of a batch (all of them without a shard),
    /// in their order, and says what it kept of how many.
    pub fn keep<T>(
        shard: Option<Shard>,
        items: Vec<T>,
        name: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Share) {
        let of = items.len();
        let kept: Vec<T> = match shard {
            None => items,
            Some(shard) => items.into_iter().filter(|i| shard.takes(name(i))).collect(),
        };
        let share = Share {
            shard,
            kept: kept.len(),
            of,
        };
        (kept, share)
    }
}

/// The variable `name` as a whole number, `None` when it is not set.
fn whole_number(
    name: &str,
    set: &impl Fn(&str) -> Option<String>,
) -> Result<Option<usize>, String> {
    set(name)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("auto: {name}=`{v}` is not a whole number"))
        })
        .transpose()
}

/// The 0-based place of a Slurm array task: (ID − MIN) / STEP.
fn slurm_offset(id: usize, set: &impl Fn(&str) -> Option<String>) -> Result<usize, String> {
    let Some(min) = whole_number("SLURM_ARRAY_TASK_MIN", set)? else {
        return Err("auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN is not".into());
    };
    let step = whole_number("SLURM_ARRAY_TASK_STEP", set)?
        .unwrap_or(1)
        .max(1);
    if id < min || (id - min) % step != 0 {
        return Err(format!(
            "auto: SLURM_ARRAY_TASK_ID={id} is not a task of the array from SLURM_ARRAY_TASK_MIN={min} by SLURM_ARRAY_TASK_STEP={step}"
        ));
    }
    Ok((id - min) / step)
}

/// FNV-1a, 64 bits: a hash any language reproduces in a few lines, the
/// same on every platform and Rust version (unlike std's `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a run kept of its batch: reported with the first event of each
/// input (`"shard": "2/3", "kept": 4, "of": 11`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    /// `--shard`, or `None` (`null`) without sharding.
    pub shard: Option<Shard>,
    /// Inputs this run kept.
    pub kept: usize,
    /// Inputs found, before sharding.
    pub of: usize,
}

impl Share {
    /// A batch of `n` inputs without sharding.
    pub const fn whole(n: usize) -> Self {
        Share {
            shard: None,
            kept: n,
            of: n,
        }
    }

    /// "shard 7/8 received none of the 5 inputs": when sharding, not a lack
    /// of inputs, left this run with nothing to do.
    pub fn left_empty(&self) -> Option<String> {
        match self.shard {
            Some(shard) if self.kept == 0 && self.of > 0 => Some(format!(
                "shard {shard} received none of the {} input{}",
                self.of,
                if self.of == 1 { "" } else { "s" }
            )),
            _ => None,
        }
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
    warn: &dyn Fn(&str),
    cancel: &AtomicBool,
) -> Result<Readable, RemoteError> {
    let direct = || Readable {
        open: open.to_string(),
        _copy: None,
    };
    // A local copy (a pipeline fetched the input once) is read as a file.
    if !crate::media::is_url(source) || !crate::media::is_url(open) {
        return Ok(direct());
    }
    let mut remote = RemoteInput::connect(open, cancel)?;
    if remote.honours_range() || !remote.needs_seeking()? {
        return Ok(direct());
    }
    warn("the server ignores Range requests; reading it through a local copy");
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
            found.push(Found::local(arg.clone(), last_component(arg), arg.clone()));
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
            Ok(meta) => {
                let name = path
                    .file_name()
                    .map_or_else(|| last_component(arg), |n| n.to_string_lossy().into_owned());
                found.push(Found::local(arg.clone(), name, file_identity(path, &meta)));
            }
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
                name: f.name,
                identity: f.identity,
            }
        })
        .collect();
    (items, problems)
}

/// One video object, or a prefix listing videos.
fn expand_s3(session: &S3Session, url: &crate::storage::ObjectUrl) -> std::io::Result<Vec<Found>> {
    let bucket = url.bucket.as_str();
    let single = is_video_name(Path::new(&url.key));
    let prefix = url.as_prefix();
    let objects = if single {
        vec![session.head(bucket, &url.key)?]
    } else {
        session
            .list(bucket, &prefix)?
            .into_iter()
            .filter(|o| is_video_name(Path::new(&o.key)))
            .collect()
    };
    objects
        .into_iter()
        .map(|o| {
            let source = format!("s3://{bucket}/{}", o.key);
            let name = match o.key.strip_prefix(&prefix) {
                Some(below) if !single => below.to_string(),
                _ => last_component(&o.key),
            };
            Ok(Found {
                name,
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
                    let name = relative_name(entry.path(), dir);
                    found.push(Found::local(
                        source,
                        name,
                        file_identity(entry.path(), &meta),
                    ));
                }
            }
            Ok(_) => {}
        }
    }
}

/// `path` below `dir` with `/` between components: a name that does not
/// depend on where the directory is.
pub fn relative_name(path: &Path, dir: &Path) -> String {
    let below = path.strip_prefix(dir).unwrap_or(path);
    let parts: Vec<_> = below
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// The last `/`-separated component of a URL or key, without its query
/// and fragment (`https://h/a/talk.mp4?t=1` → `talk.mp4`).
fn last_component(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.trim_end_matches('/');
    path.rsplit('/').next().unwrap_or(path).to_string()
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
    fn shard_values_parse_and_bad_ones_say_why() {
        assert_eq!(
            Shard::parse_with("2/3", |_| None),
            Ok(Shard { index: 2, count: 3 })
        );
        assert!(Shard::parse("0/3").is_err());
        assert!(Shard::parse("4/3").is_err());
        assert!(Shard::parse("x").is_err());
        assert_eq!(Shard { index: 2, count: 3 }.to_string(), "2/3");
    }

    /// The documented rule, for other tools to check against: FNV-1a 64 of
    /// the name's UTF-8 bytes, modulo N, plus 1.
    #[test]
    fn names_hash_with_fnv1a_64() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            Shard::of_name("a", 3),
            (0xaf63_dc4c_8601_ec8c_u64 % 3) as usize + 1
        );
        assert_eq!(Shard::of_name("anything", 1), 1);
    }

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn auto_reads_the_array_task_of_each_scheduler() {
        let auto = |vars: &[(&str, &str)]| Shard::parse_with("auto", env_of(vars));
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(auto(&slurm), Ok(Shard { index: 3, count: 4 }));
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(auto(&stepped), Ok(Shard { index: 4, count: 4 }));
        let k8s = [("JOB_COMPLETION_INDEX", "0"), ("VIDPIPE_SHARD_COUNT", "5")];
        assert_eq!(auto(&k8s), Ok(Shard { index: 1, count: 5 }));
        let aws = [
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "3"),
        ];
        assert_eq!(auto(&aws), Ok(Shard { index: 3, count: 3 }));
        let aws = [
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("VIDPIPE_SHARD_COUNT", "6"),
        ];
        assert_eq!(auto(&aws), Ok(Shard { index: 3, count: 6 }));
    }

    #[test]
    fn auto_names_the_variables_it_missed_or_could_not_use() {
        let auto = |vars: &[(&str, &str)]| {
            Shard::parse_with("auto", env_of(vars)).expect_err("not a shard")
        };
        let e = auto(&[]);
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_COUNT",
            "JOB_COMPLETION_INDEX",
            "VIDPIPE_SHARD_COUNT",
            "AWS_BATCH_JOB_ARRAY_INDEX",
            "AWS_BATCH_JOB_ARRAY_SIZE",
        ] {
            assert!(e.contains(var), "{var} in {e}");
        }
        let e = auto(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(e.contains("VIDPIPE_SHARD_COUNT is not"), "{e}");
        let e = auto(&[("JOB_COMPLETION_INDEX", "3"), ("VIDPIPE_SHARD_COUNT", "3")]);
        assert!(e.contains("JOB_COMPLETION_INDEX=3"), "{e}");
        let e = auto(&[("JOB_COMPLETION_INDEX", "x"), ("VIDPIPE_SHARD_COUNT", "3")]);
        assert!(e.contains("JOB_COMPLETION_INDEX=`x`"), "{e}");
        let e = auto(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(e.contains("SLURM_ARRAY_TASK_MIN"), "{e}");
        let e = auto(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(e.contains("SLURM_ARRAY_TASK_ID=0"), "{e}");
        let e = auto(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "0"),
        ]);
        assert!(e.contains("AWS_BATCH_JOB_ARRAY_SIZE is 0"), "{e}");
    }

    #[test]
    fn names_are_relative_to_their_argument() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a.mp4"), b"x").expect("write");
        std::fs::write(dir.path().join("sub/b.mkv"), b"x").expect("write");
        let file = dir.path().join("a.mp4").display().to_string();
        let args = [
            dir.path().display().to_string(),
            file,
            "https://example.test/v/talk.mp4?token=1".to_string(),
        ];
        let (items, problems) = expand(&args, None);
        assert!(problems.is_empty());
        let names: Vec<_> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a.mp4", "sub/b.mkv", "a.mp4", "talk.mp4"]);
    }

    #[test]
    fn an_empty_shard_of_a_batch_says_so() {
        let shard = Some(Shard { index: 7, count: 8 });
        let share = Share {
            shard,
            kept: 0,
            of: 5,
        };
        assert_eq!(
            share.left_empty().as_deref(),
            Some("shard 7/8 received none of the 5 inputs")
        );
        assert_eq!(Share::whole(0).left_empty(), None);
        let none_found = Share {
            shard,
            kept: 0,
            of: 0,
        };
        assert_eq!(none_found.left_empty(), None);
    }

    mod split {
        use super::super::*;
        use proptest::prelude::*;

        /// Distinct names, in some order.
        fn names() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::hash_set("[a-z0-9/_.-]{1,12}", 0..40)
                .prop_map(|set| set.into_iter().collect::<Vec<_>>())
                .prop_shuffle()
        }

        fn split(count: usize, names: &[String]) -> Vec<Vec<String>> {
            (1..=count)
                .map(|index| {
                    let shard = Some(Shard { index, count });
                    Shard::keep(shard, names.to_vec(), |n| n.as_str()).0
                })
                .collect()
        }

        proptest! {
            #[test]
            fn every_input_lands_in_exactly_one_shard_whatever_the_order(
                names in names(),
                count in 1usize..=7,
                seed in any::<u64>(),
            ) {
                let shards = split(count, &names);
                let mut union: Vec<&String> = shards.iter().flatten().collect();
                union.sort();
                let mut all: Vec<&String> = names.iter().collect();
                all.sort();
                prop_assert_eq!(union, all);
                // Another order of the same names: the same split.
                let mut reordered = names.clone();
                let n = reordered.len().max(1);
                reordered.rotate_left((seed as usize) % n);
                reordered.reverse();
                let again = split(count, &reordered);
                for (a, b) in shards.iter().zip(&again) {
                    let (mut a, mut b) = (a.clone(), b.clone());
                    a.sort();
                    b.sort();
                    prop_assert_eq!(a, b);
                }
            }

            #[test]
            fn adding_an_input_moves_no_other(
                names in names(),
                extra in "[a-z0-9/_.-]{1,12}",
                at in any::<prop::sample::Index>(),
                count in 1usize..=7,
            ) {
                prop_assume!(!names.contains(&extra));
                let before = split(count, &names);
                let mut more = names.clone();
                more.insert(at.index(names.len() + 1), extra.clone());
                let after = split(count, &more);
                for (b, a) in before.iter().zip(&after) {
                    let a: Vec<&String> = a.iter().filter(|n| **n != extra).collect();
                    let b: Vec<&String> = b.iter().collect();
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}
