//! Where segments start, in exact arithmetic.
//!
//! Output video runs at a constant frame rate, so a segment boundary is a
//! frame index: segment `k` starts at the first frame whose time is at or
//! after `k × segment duration`. Every rendition uses the same clock, which
//! is what makes segment N cover the same time in all of them; the audio
//! rendition cuts at the same instants.

use serde::{Deserialize, Serialize};

/// Maps frame indices and timestamps to segment numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentClock {
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Target segment duration in milliseconds.
    pub segment_ms: u32,
}

impl SegmentClock {
    /// A clock for `fps_num/fps_den` frames per second and segments of
    /// `segment_ms` milliseconds. Both must be positive.
    pub fn new(fps_num: u32, fps_den: u32, segment_ms: u32) -> Self {
        assert!(fps_num > 0 && fps_den > 0 && segment_ms > 0);
        SegmentClock {
            fps_num,
            fps_den,
            segment_ms,
        }
    }

    /// The segment that frame `index` belongs to.
    pub fn segment_of_frame(&self, index: u64) -> u32 {
        let num = u128::from(index) * u128::from(self.fps_den) * 1000;
        let den = u128::from(self.fps_num) * u128::from(self.segment_ms);
        (num / den) as u32
    }

    /// The first frame of segment `k`.
    pub fn first_frame(&self, k: u32) -> u64 {
        let num = u128::from(k) * u128::from(self.segment_ms) * u128::from(self.fps_num);
        let den = u128::from(self.fps_den) * 1000;
        num.div_ceil(den) as u64
    }

    /// Whether frame `index` opens a segment (and so must be an IDR frame).
    pub fn starts_segment(&self, index: u64) -> bool {
        self.first_frame(self.segment_of_frame(index)) == index
    }

    /// Seconds from the start of the output to frame `index`.
    pub fn frame_seconds(&self, index: u64) -> f64 {
        index as f64 * f64::from(self.fps_den) / f64::from(self.fps_num)
    }

    /// The segment containing the instant `ticks × tb_num / tb_den` seconds
    /// after the start (negative instants belong to segment 0).
    pub fn segment_of_time(&self, ticks: i64, tb_num: u32, tb_den: u32) -> u32 {
        if ticks <= 0 {
            return 0;
        }
        // The last frame at or before this instant decides the segment.
        let frames = u128::from(ticks as u64) * u128::from(tb_num) * u128::from(self.fps_num)
            / (u128::from(tb_den) * u128::from(self.fps_den));
        self.segment_of_frame(frames as u64)
    }

    /// Frames per second as a float, for playlists and progress.
    pub fn fps(&self) -> f64 {
        f64::from(self.fps_num) / f64::from(self.fps_den)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thirty_fps_six_second_segments() {
        let c = SegmentClock::new(30, 1, 6000);
        assert_eq!(c.first_frame(0), 0);
        assert_eq!(c.first_frame(1), 180);
        assert_eq!(c.segment_of_frame(179), 0);
        assert_eq!(c.segment_of_frame(180), 1);
        assert!(c.starts_segment(360));
        assert!(!c.starts_segment(361));
    }

    #[test]
    fn ntsc_rate_boundaries_round_up_to_the_next_frame() {
        let c = SegmentClock::new(30000, 1001, 6000);
        // 6 s * 29.97 = 179.82 frames: the boundary is frame 180 (6.006 s).
        assert_eq!(c.first_frame(1), 180);
        assert!((c.frame_seconds(180) - 6.006).abs() < 1e-9);
        assert_eq!(c.segment_of_time(6_006_000, 1, 1_000_000), 1);
        assert_eq!(c.segment_of_time(6_005_000, 1, 1_000_000), 0);
    }

    #[test]
    fn audio_instants_follow_video_boundaries() {
        let c = SegmentClock::new(25, 1, 4000);
        assert_eq!(c.segment_of_time(-100, 1, 48000), 0);
        assert_eq!(c.segment_of_time(4 * 48000 - 1, 1, 48000), 0);
        assert_eq!(c.segment_of_time(4 * 48000, 1, 48000), 1);
    }

    proptest! {
        #[test]
        fn first_frame_and_segment_of_frame_agree(
            fps in 5u32..=240, ntsc in any::<bool>(), ms in 1000u32..20_000, k in 0u32..5000
        ) {
            let c = SegmentClock::new(fps * 1000, if ntsc { 1001 } else { 1000 }, ms);
            let f = c.first_frame(k);
            prop_assert_eq!(c.segment_of_frame(f), k);
            prop_assert!(c.starts_segment(f));
            if f > 0 {
                prop_assert!(c.segment_of_frame(f - 1) < k);
            }
            // Boundary k is at or after k * duration and less than one frame later.
            let t = c.frame_seconds(f);
            let target = f64::from(k) * f64::from(ms) / 1000.0;
            prop_assert!(t + 1e-9 >= target);
            prop_assert!(t - target < 1.0 / c.fps() + 1e-9);
        }
    }
}
