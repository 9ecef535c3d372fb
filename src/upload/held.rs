//! Parts the server holds for an incomplete multipart upload, and whether
//! they can stand for the local file.
//!
//! With no local journal (the upload was started on another machine, or the
//! state directory is gone), the server's own ListParts is all there is to
//! go on. A held part is reused only when its size is the one the plan
//! gives that part number and its bytes are proven to be the local file's:
//! by the CRC32C the server stored with it, or, when it stored none, by an
//! ETag that is the MD5 of the part. A part that cannot be proven either
//! way is sent again; one proven different means the file changed since
//! that upload started. An upload whose parts carry no CRC32C was started
//! without a checksum algorithm; its further parts go with a Content-MD5
//! instead ([`PartChecksum::Md5`]).

use super::journal::PartChecksum;
use super::plan;
use md5::{Digest, Md5};

/// One part as ListParts describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPart {
    /// 1-based part number.
    pub number: u32,
    /// Bytes the server holds for it.
    pub size: u64,
    /// Its ETag, quotes included, as the server gave it.
    pub etag: String,
    /// The CRC32C stored with it, if the server keeps one.
    pub crc32c: Option<u32>,
}

/// How a held part compares with the local file's bytes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartCheck {
    /// Proven the same bytes: reuse it.
    Matches,
    /// Proven different bytes: the file changed.
    Differs,
    /// Nothing to compare with: send it again.
    Unproven,
}

/// Whether every held part has the size the plan (`part_size` parts of a
/// `file_size` file) gives its number: only then can the upload be
/// completed with this file's remaining parts. An upload holding no part
/// proves no part size, and has nothing worth reusing.
pub fn fits_plan(parts: &[HeldPart], file_size: u64, part_size: u64) -> bool {
    let total = plan::part_count(file_size, part_size);
    !parts.is_empty()
        && parts.iter().all(|p| {
            (1..=total).contains(&p.number)
                && p.size == plan::part_range(file_size, part_size, p.number).1
        })
}

/// How the upload holding `parts` checksums them: CRC32C when every part
/// has one, MD5 (an upload started without a checksum algorithm) when none
/// has; `None` for a mix, which no completion request can name.
pub fn checksum_of(parts: &[HeldPart]) -> Option<PartChecksum> {
    if parts.iter().all(|p| p.crc32c.is_some()) {
        Some(PartChecksum::Crc32c)
    } else if parts.iter().all(|p| p.crc32c.is_none()) {
        Some(PartChecksum::Md5)
    } else {
        None
    }
}

/// The Content-MD5 of `bytes`.
pub fn md5_base64(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(Md5::digest(bytes))
}

/// Compares a held part with `bytes`, the local file's bytes for it.
pub fn check(held: &HeldPart, bytes: &[u8]) -> PartCheck {
    let proven = |same: bool| {
        if same {
            PartCheck::Matches
        } else {
            PartCheck::Differs
        }
    };
    if held.size != bytes.len() as u64 {
        return PartCheck::Differs;
    }
    if let Some(crc) = held.crc32c {
        return proven(crc == crc32c::crc32c(bytes));
    }
    match md5_etag(&held.etag) {
        Some(md5) => proven(Md5::digest(bytes).as_slice() == md5),
        None => PartCheck::Unproven,
    }
}

/// The MD5 an ETag spells, if it is one (32 hex digits, quoted or not);
/// servers that encrypt parts return other ETags.
fn md5_etag(etag: &str) -> Option<[u8; 16]> {
    let hex = etag.trim_matches('"');
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A base64 CRC32C as S3 sends it (`x-amz-checksum-crc32c`).
pub fn parse_crc32c(b64: &str) -> Option<u32> {
    let bytes = aws_smithy_types::base64::decode(b64).ok()?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn part(number: u32, size: u64) -> HeldPart {
        HeldPart {
            number,
            size,
            etag: String::new(),
            crc32c: None,
        }
    }

    #[test]
    fn only_parts_of_the_planned_sizes_fit() {
        // 12 MiB in 5 MiB parts: 5, 5, 2.
        let size = 12 * MIB;
        assert!(fits_plan(&[part(1, 5 * MIB)], size, 5 * MIB));
        assert!(fits_plan(
            &[part(2, 5 * MIB), part(3, 2 * MIB)],
            size,
            5 * MIB
        ));
        assert!(!fits_plan(&[], size, 5 * MIB), "nothing held");
        assert!(
            !fits_plan(&[part(1, 6 * MIB)], size, 5 * MIB),
            "other part size"
        );
        assert!(!fits_plan(&[part(3, 3 * MIB)], size, 5 * MIB), "file grew");
        assert!(!fits_plan(&[part(4, MIB)], size, 5 * MIB), "file shrank");
    }

    #[test]
    fn a_part_is_proven_by_its_crc32c_or_its_md5_etag_else_sent_again() {
        let bytes = b"the bytes of one part";
        let mut held = part(1, bytes.len() as u64);
        held.crc32c = Some(crc32c::crc32c(bytes));
        assert_eq!(check(&held, bytes), PartCheck::Matches);
        assert_eq!(check(&held, b"the bytes of one pary"), PartCheck::Differs);

        held.crc32c = None;
        let md5: String = Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        held.etag = format!("\"{md5}\"");
        assert_eq!(check(&held, bytes), PartCheck::Matches);
        assert_eq!(check(&held, b"the bytes of one pary"), PartCheck::Differs);

        held.etag = "\"opaque-etag-of-an-encrypted-part\"".into();
        assert_eq!(check(&held, bytes), PartCheck::Unproven);
        assert_eq!(check(&held, b"short"), PartCheck::Differs, "size");
    }

    #[test]
    fn an_upload_checksums_its_parts_one_way() {
        let mut with = part(1, 1);
        with.crc32c = Some(7);
        let without = part(2, 1);
        let mut other = without.clone();
        other.crc32c = Some(8);
        assert_eq!(
            checksum_of(&[with.clone(), other]),
            Some(PartChecksum::Crc32c)
        );
        assert_eq!(
            checksum_of(&[without.clone(), part(3, 1)]),
            Some(PartChecksum::Md5)
        );
        assert_eq!(checksum_of(&[with, without]), None);
    }

    #[test]
    fn crc32c_values_round_trip_through_base64() {
        let crc = crc32c::crc32c(b"abc");
        let b64 = aws_smithy_types::base64::encode(crc.to_be_bytes());
        assert_eq!(parse_crc32c(&b64), Some(crc));
        assert_eq!(parse_crc32c("not base64!"), None);
        assert_eq!(parse_crc32c("AAAA"), None, "three bytes");
    }
}
