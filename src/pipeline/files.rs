//! The files an input brings along (its transcripts, its commentary
//! script): found beside it by a pattern and made local.
//!
//! A pattern is relative to the input's own directory or bucket prefix
//! (`{stem}.*.srt`), or absolute (`/data/scripts/{stem}.yaml`,
//! `s3://media/scripts/{stem}.yaml`); `*` and `?` match within its last
//! component. Matches are sorted by name; bucket objects are copied into
//! the input's scratch directory under their own names, which the steps
//! read (a language comes from a transcript's name).

use super::manifest::Placeholders;
use crate::inputs::InputItem;
use crate::storage::{ObjectUrl, S3Session};
use std::io;
use std::path::{Path, PathBuf};

/// Where an input lives, for the files beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beside {
    /// A local directory.
    Dir(PathBuf),
    /// A bucket prefix (ending in `/`, or empty).
    Prefix {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
    /// An http(s) URL: nothing beside it can be listed.
    Url,
}

impl Beside {
    /// Where `item` lives.
    pub fn of(item: &InputItem) -> Self {
        if let Some((bucket, key)) = &item.object {
            let prefix = key.rfind('/').map_or("", |i| &key[..=i]);
            return Beside::Prefix {
                bucket: bucket.clone(),
                prefix: prefix.to_string(),
            };
        }
        if crate::media::is_url(&item.source) {
            return Beside::Url;
        }
        let dir = Path::new(&item.source)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Beside::Dir(dir.to_path_buf())
    }

    /// `{dir}` as text: the directory, or `s3://bucket/prefix`.
    fn text(&self, item: &InputItem) -> String {
        match self {
            Beside::Dir(dir) => dir.display().to_string(),
            Beside::Prefix { bucket, prefix } => {
                format!("s3://{bucket}/{}", prefix.trim_end_matches('/'))
            }
            Beside::Url => {
                let source = item.source.split(['?', '#']).next().unwrap_or(&item.source);
                source
                    .rsplit_once('/')
                    .map_or(source, |(d, _)| d)
                    .to_string()
            }
        }
    }
}

/// What the placeholders stand for with `item`: its file name, that name
/// without its extension, and where it is.
pub fn placeholders(item: &InputItem) -> Placeholders {
    let source = item.source.split(['?', '#']).next().unwrap_or(&item.source);
    let name = source.rsplit('/').next().unwrap_or(source).to_string();
    let stem = Path::new(&name)
        .file_stem()
        .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
    Placeholders {
        stem,
        dir: Beside::of(item).text(item),
        name,
    }
}

/// The local files matching `pattern` (its placeholders expanded) for an
/// input living at `beside`; bucket objects are copied into `scratch`.
/// Nothing found is an empty list, not an error.
pub fn find(
    pattern: &str,
    beside: &Beside,
    session: Option<&S3Session>,
    scratch: &Path,
) -> io::Result<Vec<PathBuf>> {
    let (place, wanted) = match pattern.rsplit_once('/') {
        Some((dir, last)) => (Some(dir), last),
        None => (None, pattern),
    };
    let located =
        match (place, beside) {
            (Some(dir), _) if dir.starts_with("s3://") => {
                let url = ObjectUrl::parse(&format!("{dir}/")).map_err(io::Error::other)?;
                Beside::Prefix {
                    prefix: url.as_prefix(),
                    bucket: url.bucket,
                }
            }
            (Some(dir), _) if Path::new(dir).is_absolute() => Beside::Dir(PathBuf::from(dir)),
            (Some(_), _) if pattern.starts_with('/') => Beside::Dir(PathBuf::from("/")),
            (place, Beside::Dir(base)) => Beside::Dir(place.map_or(base.clone(), |p| base.join(p))),
            (place, Beside::Prefix { bucket, prefix }) => Beside::Prefix {
                bucket: bucket.clone(),
                prefix: place.map_or(prefix.clone(), |p| format!("{prefix}{p}/")),
            },
            (_, Beside::Url) => return Err(io::Error::other(
                "nothing beside an http(s) input can be listed; give an absolute path or s3:// URL",
            )),
        };
    match located {
        Beside::Dir(dir) => local_matches(&dir, wanted),
        Beside::Prefix { bucket, prefix } => {
            let session = session.ok_or_else(|| io::Error::other("no S3 connection"))?;
            bucket_matches(session, (&bucket, &prefix), wanted, scratch)
        }
        Beside::Url => Ok(Vec::new()),
    }
}

fn local_matches(dir: &Path, wanted: &str) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|e| matches(wanted, &e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

fn bucket_matches(
    session: &S3Session,
    (bucket, prefix): (&str, &str),
    wanted: &str,
    scratch: &Path,
) -> io::Result<Vec<PathBuf>> {
    let literal = wanted.split(['*', '?']).next().unwrap_or("");
    let mut keys: Vec<String> = session
        .list(bucket, &format!("{prefix}{literal}"))?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| {
            let name = &k[prefix.len()..];
            !name.contains('/') && matches(wanted, name)
        })
        .collect();
    keys.sort();
    keys.iter()
        .map(|key| {
            let path = scratch.join(&key[prefix.len()..]);
            std::fs::write(&path, session.get(bucket, key)?)?;
            Ok(path)
        })
        .collect()
}

/// Whether `name` matches `pattern`, where `*` is any run of characters
/// and `?` any one character.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy match with one backtrack point: the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Whether `pattern` has wildcards.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: &str, object: Option<(&str, &str)>) -> InputItem {
        InputItem {
            source: source.into(),
            open: source.into(),
            object: object.map(|(b, k)| (b.into(), k.into())),
            stem: "x".into(),
            name: "x".into(),
            identity: String::new(),
        }
    }

    #[test]
    fn wildcards_match_within_a_name() {
        assert!(matches("talk.*.srt", "talk.en.srt"));
        assert!(matches("talk.*.srt", "talk.pt-BR.srt"));
        assert!(!matches("talk.*.srt", "talk.srt"));
        assert!(!matches("talk.*.srt", "talks.en.srt"));
        assert!(matches("t?lk.srt", "talk.srt"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("talk.commentary.yaml", "talk.commentary.yaml"));
    }

    #[test]
    fn placeholders_of_files_objects_and_urls() {
        let p = placeholders(&item("raw/2024/talk.final.mp4", None));
        assert_eq!(
            (p.stem.as_str(), p.dir.as_str(), p.name.as_str()),
            ("talk.final", "raw/2024", "talk.final.mp4")
        );
        let p = placeholders(&item(
            "s3://media/raw/talk.mp4",
            Some(("media", "raw/talk.mp4")),
        ));
        assert_eq!(
            (p.stem.as_str(), p.dir.as_str()),
            ("talk", "s3://media/raw")
        );
        let p = placeholders(&item("talk.mp4", None));
        assert_eq!(p.dir, ".");
        let p = placeholders(&item("https://h/v/talk.mp4?sig=1", None));
        assert_eq!(
            (p.name.as_str(), p.dir.as_str()),
            ("talk.mp4", "https://h/v")
        );
    }

    #[test]
    fn local_files_beside_the_input_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["talk.fr.srt", "talk.en.srt", "other.en.srt", "talk.mp4"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        let beside = Beside::of(&item(
            &dir.path().join("talk.mp4").display().to_string(),
            None,
        ));
        let found = find("talk.*.srt", &beside, None, dir.path()).expect("find");
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["talk.en.srt", "talk.fr.srt"]);
        assert!(find("nothing.*", &beside, None, dir.path())
            .expect("find")
            .is_empty());
        assert!(find("missing/talk.*", &beside, None, dir.path())
            .expect("find")
            .is_empty());
        let absolute = format!("{}/other.*.srt", dir.path().display());
        assert_eq!(
            find(&absolute, &Beside::Url, None, dir.path())
                .expect("find")
                .len(),
            1
        );
        assert!(find("talk.*", &Beside::Url, None, dir.path()).is_err());
    }
}
