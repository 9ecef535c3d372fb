//! Pure arithmetic of a multipart upload: part sizes and byte ranges.

/// S3's smallest part (except the last) and largest part.
pub const MIN_PART: u64 = 5 * 1024 * 1024;
/// Largest part S3 accepts.
pub const MAX_PART: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// The part size for a file: `requested`, grown in whole MiB until the file
/// fits in 10,000 parts. `requested` must already be within 5 MiB–5 GiB.
pub fn part_size_for(file_size: u64, requested: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = file_size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    requested.max(needed).min(MAX_PART)
}

/// Number of parts of `file_size` bytes in parts of `part_size`.
pub fn part_count(file_size: u64, part_size: u64) -> u32 {
    file_size.div_ceil(part_size).max(1) as u32
}

/// Byte range (offset, length) of 1-based part `number`.
pub fn part_range(file_size: u64, part_size: u64, number: u32) -> (u64, u64) {
    let offset = u64::from(number - 1) * part_size;
    (offset, part_size.min(file_size - offset))
}

/// Validates a user-given part size.
pub fn check_part_size(bytes: u64) -> Result<u64, String> {
    if (MIN_PART..=MAX_PART).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "part size {bytes} bytes is outside 5 MiB to 5 GiB (S3's limits)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_files_keep_the_requested_part_size() {
        assert_eq!(part_size_for(100 << 20, 8 << 20), 8 << 20);
        assert_eq!(part_count(100 << 20, 8 << 20), 13);
        assert_eq!(part_range(100 << 20, 8 << 20, 13), (96 << 20, 4 << 20));
        assert_eq!(part_count(0, 8 << 20), 1);
    }

    #[test]
    fn huge_files_grow_the_part_size() {
        let size = 200u64 << 30; // 200 GiB
        let part = part_size_for(size, 8 << 20);
        assert!(part_count(size, part) as u64 <= MAX_PARTS);
        assert_eq!(part % (1 << 20), 0);
    }

    #[test]
    fn part_sizes_outside_s3_limits_are_refused() {
        assert_eq!(check_part_size(MIN_PART), Ok(MIN_PART));
        assert_eq!(check_part_size(MAX_PART), Ok(MAX_PART));
        assert!(check_part_size(1 << 20).is_err());
        assert!(check_part_size(6 << 30).is_err());
    }

    proptest! {
        #[test]
        fn parts_cover_the_file_exactly(size in 0u64..(6u64 << 40), requested in MIN_PART..(64u64 << 20)) {
            let part = part_size_for(size, requested);
            prop_assert!((MIN_PART..=MAX_PART).contains(&part));
            let count = part_count(size, part);
            prop_assert!(u64::from(count) <= MAX_PARTS);
            let (last_offset, last_len) = part_range(size, part, count);
            prop_assert_eq!(last_offset + last_len, size);
            if count > 1 {
                let (_, first_len) = part_range(size, part, 1);
                prop_assert_eq!(first_len, part);
            }
        }
    }
}
