//! What the user typed as a place: the one parser of `s3://` URLs.
//!
//! [`Location`] is a `DEST` (a local directory or `s3://bucket/prefix`),
//! [`ObjectUrl`] one object (`s3://bucket/key`, or a prefix ending in `/`).
//! Both check the bucket name the same way, so every subcommand accepts and
//! rejects the same spellings with the same message.

use std::fmt;
use std::path::PathBuf;

const SCHEME: &str = "s3://";

/// A `DEST` argument: a local directory or `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine.
    Local(PathBuf),
    /// A bucket and a key prefix (empty, or ending in `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, empty or ending in `/`.
        prefix: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::S3 { bucket, prefix } => write!(f, "{SCHEME}{bucket}/{prefix}"),
        }
    }
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a local path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with(SCHEME) {
            if text.contains("://") {
                return Err(format!(
                    "`{text}`: only local paths and s3:// URLs are supported"
                ));
            }
            return Ok(Location::Local(PathBuf::from(text)));
        }
        let url = ObjectUrl::parse(text)?;
        let prefix = url.key.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Location::S3 {
            bucket: url.bucket,
            prefix,
        })
    }

    /// Whether this is a bucket location.
    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// The directory or prefix `relative` (`talk`, `talk/commentary`)
    /// below this one.
    pub fn join(&self, relative: &str) -> Location {
        let relative = relative.trim_matches('/');
        match self {
            Location::Local(dir) => Location::Local(dir.join(relative)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}{relative}/"),
            },
        }
    }
}

/// One `s3://bucket/key` (a key ending in `/`, or empty, names a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// Bucket name, checked against the S3 naming rules.
    pub bucket: String,
    /// Key, possibly empty or ending in `/`.
    pub key: String,
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

impl ObjectUrl {
    /// Parses `s3://bucket[/key]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("`{text}` is not an s3://bucket/key URL"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|reason| format!("`{text}`: {reason}"))?;
        Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// Whether the URL names a prefix (empty key or a trailing `/`) rather
    /// than one object.
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The key as a prefix: empty, or ending in `/`.
    pub fn as_prefix(&self) -> String {
        if self.is_prefix() {
            self.key.clone()
        } else {
            format!("{}/", self.key)
        }
    }

    /// The directory part and the last name of an object URL
    /// (`s3://b/a/m.m3u8` → `s3://b/a/` and `m.m3u8`).
    pub fn split_name(&self) -> Option<(Location, String)> {
        if self.is_prefix() {
            return None;
        }
        let (dir, name) = self.key.rsplit_once('/').unwrap_or(("", &self.key));
        Some((
            Location::S3 {
                bucket: self.bucket.clone(),
                prefix: if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                },
            },
            name.to_string(),
        ))
    }
}

/// The S3 bucket naming rules that matter for addressing: 3–63 characters
/// of lowercase letters, digits, `-` and `.`, starting and ending with a
/// letter or digit.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the bucket name is missing (s3://bucket/...)".into());
    }
    let chars_ok = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = bucket
        .chars()
        .next()
        .zip(bucket.chars().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && chars_ok && ends_ok {
        Ok(())
    } else {
        Err(format!(
            "`{bucket}` is not a valid bucket name (3-63 lowercase letters, digits, `-` or `.`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(Location::parse("out"), Ok(Location::Local("out".into())));
        assert_eq!(
            Location::parse("s3://media/vod/2024/"),
            Ok(Location::S3 {
                bucket: "media".into(),
                prefix: "vod/2024/".into()
            })
        );
        assert_eq!(
            Location::parse("s3://media"),
            Ok(Location::S3 {
                bucket: "media".into(),
                prefix: String::new()
            })
        );
        assert!(Location::parse("s3://Bad_Bucket/x").is_err());
        assert!(Location::parse("ftp://host/x").is_err());
    }

    #[test]
    fn object_urls_follow_the_bucket_rules() {
        let url = ObjectUrl::parse("s3://media/raw/talk.mp4").expect("valid");
        assert_eq!(url.bucket, "media");
        assert_eq!(url.key, "raw/talk.mp4");
        assert!(!url.is_prefix());
        assert_eq!(url.to_string(), "s3://media/raw/talk.mp4");
        assert!(ObjectUrl::parse("s3://media/raw/")
            .expect("prefix")
            .is_prefix());
        assert!(ObjectUrl::parse("s3://media").expect("bucket").is_prefix());
        for bad in [
            "s3://",
            "s3:///key",
            "s3://ab/key",
            "s3://UPPER/key",
            "s3://under_score/k",
            "s3://-dash/k",
            "http://media/k",
        ] {
            assert!(ObjectUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("s3://{}/k", "a".repeat(64));
        assert!(ObjectUrl::parse(&long).is_err());
        assert!(ObjectUrl::parse("s3://")
            .expect_err("no bucket")
            .contains("bucket name is missing"));
    }

    #[test]
    fn object_url_splits_into_directory_and_name() {
        let url = ObjectUrl::parse("s3://media/vod/talk/master.m3u8").expect("valid");
        let (dir, name) = url.split_name().expect("object");
        assert_eq!(dir, Location::parse("s3://media/vod/talk/").expect("dir"));
        assert_eq!(name, "master.m3u8");
        assert!(ObjectUrl::parse("s3://media/vod/")
            .expect("prefix")
            .split_name()
            .is_none());
    }
}
