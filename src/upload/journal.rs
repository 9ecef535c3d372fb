//! The upload journal: what a re-run needs to resume a multipart upload.
//!
//! One JSON file per destination object in the journal directory
//! ([`crate::state::StateDirs::upload_journals`]), written atomically after
//! every acknowledged part; a damaged one is set aside (see
//! [`crate::state`]). It names the upload id, part
//! size and the source's size and mtime (a changed source is refused), and
//! every completed part with its ETag and CRC32C.

use crate::state::{Loaded, StateError, StateFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One acknowledged part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// ETag the server returned.
    pub etag: String,
    /// CRC32C of the part's bytes.
    pub crc32c: u32,
    /// Length in bytes.
    pub size: u64,
}

/// How the parts of an upload are checksummed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartChecksum {
    /// Each part is sent with its CRC32C, which the server stores, and the
    /// object's composite CRC32C is checked at the end (uploads vidpipe
    /// starts).
    #[default]
    Crc32c,
    /// The upload was started without a checksum algorithm (by another
    /// tool): parts carry a Content-MD5 the server checks, and the
    /// completion names none.
    Md5,
}

/// The journal of one multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Local source file.
    pub source: PathBuf,
    /// Its size when the upload started.
    pub source_size: u64,
    /// Its mtime (ns since the epoch) when the upload started.
    pub source_mtime: u128,
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// The server's upload id.
    pub upload_id: String,
    /// Bytes per part (the last may be shorter).
    pub part_size: u64,
    /// How its parts are checksummed (journals that do not say: CRC32C).
    #[serde(default)]
    pub part_checksum: PartChecksum,
    /// Acknowledged parts by 1-based number.
    pub parts: BTreeMap<u32, PartRecord>,
}

impl Journal {
    /// Where the journal of `s3://bucket/key` lives under `dir`.
    pub fn path_for(dir: &Path, bucket: &str, key: &str) -> PathBuf {
        let digest = Sha256::digest(format!("{bucket}/{key}").as_bytes());
        let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        dir.join(format!("{name}.json"))
    }

    /// Reads a journal: no value if absent; a damaged one is set aside and
    /// reported; an unreadable one is an error.
    pub fn load(path: &Path) -> Result<Loaded<Journal>, StateError> {
        StateFile::new(path).load()
    }

    /// Saves atomically.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        StateFile::new(path).save(self)
    }

    /// Forgets the journal at `path` (its upload completed or was aborted).
    pub fn remove(path: &Path) -> Result<(), StateError> {
        StateFile::<Journal>::new(path).remove()
    }

    /// Bytes already acknowledged.
    pub fn bytes_done(&self) -> u64 {
        self.parts.values().map(|p| p.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Journal::path_for(dir.path(), "b", "k/v.mp4");
        let mut j = Journal {
            source: "v.mp4".into(),
            source_size: 10,
            source_mtime: 7,
            bucket: "b".into(),
            key: "k/v.mp4".into(),
            upload_id: "id".into(),
            part_size: 5 << 20,
            part_checksum: PartChecksum::Md5,
            parts: BTreeMap::new(),
        };
        j.parts.insert(
            1,
            PartRecord {
                etag: "\"e\"".into(),
                crc32c: 42,
                size: 10,
            },
        );
        j.save(&path).expect("save");
        assert_eq!(Journal::load(&path).expect("load").value, Some(j.clone()));
        assert_eq!(j.bytes_done(), 10);
        assert_ne!(path, Journal::path_for(dir.path(), "b", "k/other.mp4"));
    }

    #[test]
    fn journals_written_before_part_checksums_were_recorded_mean_crc32c() {
        let old = r#"{"source":"v.mp4","source_size":10,"source_mtime":7,"bucket":"b",
            "key":"k","upload_id":"id","part_size":5242880,"parts":{}}"#;
        let j: Journal = serde_json::from_str(old).expect("parse");
        assert_eq!(j.part_checksum, PartChecksum::Crc32c);
    }
}
