//! RFC 6381 codec strings (`avc1.640028`, `mp4a.40.2`) read from what the
//! encoder really produced, for the master playlist's `CODECS`.

/// AAC-LC, the only audio profile vidpipe writes.
pub const AAC_LC: &str = "mp4a.40.2";

/// The `avc1.PPCCLL` string from H.264 data: either an `avcC` record
/// (MP4 extradata) or Annex B bytes containing an SPS (a keyframe packet).
pub fn avc1_codec(data: &[u8]) -> Option<String> {
    let sps = if data.first() == Some(&1) && data.len() >= 4 {
        // avcC: version 1, then profile, constraint flags, level.
        &data[1..4]
    } else {
        annexb_sps(data)?
    };
    Some(format!("avc1.{:02x}{:02x}{:02x}", sps[0], sps[1], sps[2]))
}

/// The three bytes after the first SPS NAL header in Annex B data.
fn annexb_sps(data: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let nal = i + 3;
            if data[nal] & 0x1f == 7 && nal + 4 <= data.len() {
                return Some(&data[nal + 1..nal + 4]);
            }
            i = nal;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_high_profile_level_4_from_annex_b() {
        let packet = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac,
        ];
        assert_eq!(avc1_codec(&packet).as_deref(), Some("avc1.640028"));
    }

    #[test]
    fn reads_avcc_extradata() {
        let avcc = [1, 0x4d, 0x40, 0x1f, 0xff, 0xe1];
        assert_eq!(avc1_codec(&avcc).as_deref(), Some("avc1.4d401f"));
    }

    #[test]
    fn no_sps_no_codec() {
        assert_eq!(avc1_codec(&[0, 0, 1, 0x65, 1, 2, 3]), None);
        assert_eq!(avc1_codec(&[]), None);
    }
}
