//! Short identities of settings, so a re-run can tell whether the state an
//! earlier run left belongs to the same output.
//!
//! Both resumable jobs (`transcode-hls`'s checkpoint, `commentary`'s state
//! file) store the fingerprint of everything that shapes their output and
//! start over when it changes.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// 128 bits of the SHA-256 of `value`'s JSON, in hex. Two values with the
/// same JSON have the same fingerprint.
pub fn fingerprint(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_32_hex_digits_that_follow_the_value() {
        let a = fingerprint(&("clip.mp4", 6000));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, fingerprint(&("clip.mp4", 6000)));
        assert_ne!(a, fingerprint(&("clip.mp4", 4000)));
    }
}
