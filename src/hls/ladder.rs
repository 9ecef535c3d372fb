//! The ABR ladder: which renditions an input gets.
//!
//! Rungs are named by the short side of the displayed picture (so a portrait
//! phone clip gets `720p` at 720x1280). A rung above the source is never
//! used (no upscaling); a source smaller than the lowest rung gets a single
//! rendition at its own size. Dimensions are even, aspect ratio kept.

use crate::units::Bitrate;
use serde::Serialize;
use std::fmt;

/// One step of the configured ladder: a target short side and its bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// Short side of the displayed picture, in pixels.
    pub short_side: u32,
    /// Target video bitrate.
    pub bitrate: Bitrate,
}

/// The configured rungs, highest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ladder(Vec<Rung>);

impl Default for Ladder {
    fn default() -> Self {
        Self::parse("1080:5000k,720:2800k,480:1400k,360:800k,240:400k")
            .expect("built-in ladder parses")
    }
}

impl fmt::Display for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}:{}", r.short_side, r.bitrate))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Ladder {
    /// Parses `1080:5000k,720:2800k,...` (order free, duplicates refused).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rungs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (side, rate) = item.split_once(':').ok_or_else(|| {
                format!("ladder rung `{item}` must look like HEIGHT:BITRATE, e.g. 720:2800k")
            })?;
            let side = side.trim().trim_end_matches('p');
            let short_side: u32 = side
                .parse()
                .map_err(|_| format!("ladder rung `{item}`: `{side}` is not a height"))?;
            if !(16..=4320).contains(&short_side) {
                return Err(format!(
                    "ladder rung `{item}`: height must be 16 to 4320 pixels"
                ));
            }
            let bitrate = Bitrate::parse(rate).map_err(|e| format!("ladder rung `{item}`: {e}"))?;
            if rungs.iter().any(|r: &Rung| r.short_side == short_side) {
                return Err(format!("ladder lists {short_side}p twice"));
            }
            rungs.push(Rung {
                short_side,
                bitrate,
            });
        }
        if rungs.is_empty() {
            return Err("the ladder needs at least one rung".into());
        }
        rungs.sort_by_key(|r| std::cmp::Reverse(r.short_side));
        Ok(Ladder(rungs))
    }

    /// The rungs, highest first.
    pub fn rungs(&self) -> &[Rung] {
        &self.0
    }

    /// The renditions for a source whose displayed picture is
    /// `width`x`height` (rotation already applied).
    pub fn plan(&self, width: u32, height: u32) -> Vec<Rendition> {
        let short = width.min(height);
        let fitting: Vec<Rendition> = self
            .0
            .iter()
            .filter(|r| r.short_side <= short)
            .map(|r| Rendition::scaled(width, height, r.short_side, r.bitrate))
            .collect();
        if !fitting.is_empty() {
            return fitting;
        }
        // Below the lowest rung: one rendition at the source's own size, with
        // the lowest rung's bitrate scaled down by pixel count.
        let lowest = self.0[self.0.len() - 1];
        let (w, h) = (even_floor(width), even_floor(height));
        let rung_pixels = f64::from(lowest.short_side).powi(2) * 16.0 / 9.0;
        let share = (f64::from(w) * f64::from(h) / rung_pixels).min(1.0);
        let bitrate = Bitrate(((lowest.bitrate.0 as f64 * share) as u64).max(64_000));
        vec![Rendition::sized(w, h, bitrate)]
    }
}

/// One video rendition to encode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendition {
    /// Directory and display name, e.g. `720p`.
    pub name: String,
    /// Encoded width.
    pub width: u32,
    /// Encoded height.
    pub height: u32,
    /// Target video bitrate.
    pub bitrate: Bitrate,
}

impl Rendition {
    fn scaled(width: u32, height: u32, short_side: u32, bitrate: Bitrate) -> Self {
        let long = width.max(height);
        let short = width.min(height);
        let scaled_long =
            (f64::from(long) * f64::from(short_side) / f64::from(short) / 2.0).round() as u32 * 2;
        let scaled_long = scaled_long.clamp(2, even_floor(long).max(2));
        let short_even = even_floor(short_side);
        let (w, h) = if width >= height {
            (scaled_long, short_even)
        } else {
            (short_even, scaled_long)
        };
        Self::sized(w, h, bitrate)
    }

    fn sized(width: u32, height: u32, bitrate: Bitrate) -> Self {
        Rendition {
            name: format!("{}p", width.min(height)),
            width,
            height,
            bitrate,
        }
    }
}

fn even_floor(v: u32) -> u32 {
    (v / 2 * 2).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sizes(renditions: &[Rendition]) -> Vec<(String, u32, u32)> {
        renditions
            .iter()
            .map(|r| (r.name.clone(), r.width, r.height))
            .collect()
    }

    #[test]
    fn full_hd_gets_every_rung() {
        let plan = Ladder::default().plan(1920, 1080);
        assert_eq!(
            sizes(&plan),
            vec![
                ("1080p".into(), 1920, 1080),
                ("720p".into(), 1280, 720),
                ("480p".into(), 854, 480),
                ("360p".into(), 640, 360),
                ("240p".into(), 426, 240),
            ]
        );
    }

    #[test]
    fn portrait_is_laddered_by_its_short_side() {
        let plan = Ladder::default().plan(720, 1280);
        assert_eq!(plan[0].name, "720p");
        assert_eq!((plan[0].width, plan[0].height), (720, 1280));
        assert_eq!(plan.len(), 4);
    }

    #[test]
    fn never_upscales() {
        let plan = Ladder::default().plan(1280, 720);
        assert!(plan.iter().all(|r| r.width <= 1280 && r.height <= 720));
        assert_eq!(plan[0].name, "720p");
    }

    #[test]
    fn tiny_source_gets_one_rendition_at_its_own_size() {
        let plan = Ladder::default().plan(161, 121);
        assert_eq!(sizes(&plan), vec![("120p".into(), 160, 120)]);
        assert!(plan[0].bitrate.0 <= 400_000);
    }

    #[test]
    fn odd_source_dimensions_become_even() {
        let plan = Ladder::default().plan(641, 361);
        assert_eq!((plan[0].width, plan[0].height), (640, 360));
    }

    #[test]
    fn parse_rejects_bad_ladders() {
        assert!(Ladder::parse("").is_err());
        assert!(Ladder::parse("720").is_err());
        assert!(Ladder::parse("720:abc").is_err());
        assert!(Ladder::parse("720:1M,720:2M").is_err());
        assert_eq!(
            Ladder::parse("360p:800k, 720:2800k").map(|l| l.to_string()),
            Ok("720:2800k,360:800k".to_string())
        );
    }

    proptest! {
        #[test]
        fn plan_is_even_unscaled_and_keeps_aspect(w in 16u32..4000, h in 16u32..4000) {
            let plan = Ladder::default().plan(w, h);
            prop_assert!(!plan.is_empty());
            for r in &plan {
                prop_assert_eq!(r.width % 2, 0);
                prop_assert_eq!(r.height % 2, 0);
                prop_assert!(r.width <= w.max(2) && r.height <= h.max(2));
                // Orientation is kept.
                prop_assert_eq!(r.width >= r.height, w >= h || r.width == r.height);
                // Aspect ratio within rounding to even pixels.
                let src = f64::from(w) / f64::from(h);
                let out = f64::from(r.width) / f64::from(r.height);
                let tolerance = 2.5 / f64::from(r.width.min(r.height)) * src.max(1.0 / src) + 0.02;
                prop_assert!((src / out - 1.0).abs() <= tolerance, "{}x{} -> {}x{}", w, h, r.width, r.height);
            }
            let names: std::collections::HashSet<_> = plan.iter().map(|r| &r.name).collect();
            prop_assert_eq!(names.len(), plan.len());
        }
    }
}
