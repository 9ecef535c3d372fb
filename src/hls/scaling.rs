//! Where each rendition's pictures come from, and which thread makes them.
//!
//! **Cascade.** Scaling a rung from the next larger rung instead of the
//! source costs less: swscale's horizontal pass touches every input pixel,
//! so 480p from 720p reads 2.25 times fewer pixels than 480p from 1080p.
//! [`parents`] picks, per rendition, the picture it is scaled from.
//!
//! **Groups.** A worker thread per rendition keeps every core busy when
//! there are two or more. On one core the threads only take turns every few
//! milliseconds, and each turn evicts the other encoders' data from the
//! caches (measured: 12% more CPU for five renditions than one ffmpeg
//! process). So on one core all renditions form one group, run on the
//! decoding thread itself, one rendition after another for each frame, as
//! one ffmpeg process does ([`groups`]). Groups hand the pictures later
//! groups scale from ([`Plan::forwarded`]) to the next group: they form a
//! pipeline fed by the decoder.

use super::ladder::Rendition;
use serde::Serialize;
use std::ops::Range;

/// How renditions are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scaling {
    /// Each rendition from the next larger one (where that is smaller than
    /// the source), else from the source.
    #[default]
    Cascade,
    /// Every rendition from the source.
    Direct,
}

/// Which cascade steps keep the quality. Each bicubic pass softens a
/// little, and against the reference (the source scaled directly, as
/// earlier output was) a long chain or a long step drifts. Measured on
/// the benchmark clip (1080p30 camera-like detail and grain, x264
/// veryfast, the default ladder): PSNR of each rendition against the
/// source scaled directly, cascade minus direct scaling (x264's response
/// to a slightly different picture alone moves this by up to 0.1 dB
/// either way):
///
/// | rendition | scaled from | step | passes | dB |
/// |---|---|---|---|---|
/// | 480p | 720p | 1.5 | 2 | -0.03 |
/// | 360p | 480p | 1.33 | 3 | -0.10 |
/// | 360p | 720p | 2.0 | 2 | +0.04 |
/// | 240p | 360p | 1.5 | 3 | -0.05 |
/// | 240p | 720p | 3.0 | 2 | -0.06 |
///
/// So a rung is scaled from the nearest larger rung 1.5 to 2 times its
/// size that is at most one pass from the source, else from the source
/// (240p on a 1080p source).
///
/// Bicubic stays the scaler, for the cascade steps too. Scaling 1080p to
/// 720p and then to 480p, against 480p straight from 1080p with bicubic,
/// measured on the pictures alone: bicubic 53.7 dB, lanczos 51.8 dB, area
/// 48.2 dB, bilinear 45.2 dB. Lanczos also cost more CPU; area and
/// bilinear saved less than this machine's noise. On sharp synthetic pictures (`testsrc2`) the pictures
/// still agree to 54 dB, but at 320p and 600 kb/s the encoded rendition
/// lost 0.25 dB: `--scaling direct` is there for screen recordings.
const CASCADE_STEPS: std::ops::RangeInclusive<f64> = 1.49..=2.01;
const MAX_PASSES: u32 = 2;

/// For each rendition (largest first, as planned for a source of
/// `source` pixels), the index of the rendition its pictures are scaled
/// from, or `None` for the source.
pub fn parents(
    renditions: &[Rendition],
    source: (u32, u32),
    scaling: Scaling,
) -> Vec<Option<usize>> {
    let mut parent: Vec<Option<usize>> = Vec::with_capacity(renditions.len());
    let mut passes: Vec<u32> = Vec::with_capacity(renditions.len());
    for (i, r) in renditions.iter().enumerate() {
        let from = match scaling {
            Scaling::Direct => None,
            Scaling::Cascade => (0..i).rev().find(|&p| {
                let larger = &renditions[p];
                let step = f64::min(
                    f64::from(larger.width) / f64::from(r.width),
                    f64::from(larger.height) / f64::from(r.height),
                );
                CASCADE_STEPS.contains(&step) && passes[p] < MAX_PASSES
            }),
        };
        let own = u32::from((r.width, r.height) != source);
        passes.push(from.map_or(0, |p| passes[p]) + own);
        parent.push(from);
    }
    parent
}

/// One rendition as a group worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Index of the rendition in the planned ladder.
    pub rendition: usize,
    /// Whether it is encoded; otherwise it is only scaled, because a
    /// rendition encoded in this run is scaled from it (a resume where the
    /// larger rendition was already complete).
    pub encode: bool,
    /// The member its pictures are scaled from, `None` for the source.
    pub parent: Option<usize>,
}

/// What one encode pass computes, and on which threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Renditions pictures are made for, largest first.
    pub members: Vec<Member>,
    /// Members of each worker group, a contiguous range each.
    pub groups: Vec<Range<usize>>,
}

/// Pictures passed between groups: entry 0 is the decoded frame, entry
/// `m + 1` the picture of member `m`.
pub fn entry(member: Option<usize>) -> usize {
    member.map_or(0, |m| m + 1)
}

impl Plan {
    /// The members for the renditions marked in `pending` (of a source of
    /// `source` pixels), plus the complete renditions their pictures are
    /// scaled from, split into groups for `cores` ([`groups`]).
    pub fn new(
        renditions: &[Rendition],
        source: (u32, u32),
        pending: &[bool],
        scaling: Scaling,
        cores: usize,
    ) -> Self {
        let parent = parents(renditions, source, scaling);
        let mut needed = pending.to_vec();
        for i in (0..renditions.len()).rev() {
            if needed[i] {
                if let Some(p) = parent[i] {
                    needed[p] = true;
                }
            }
        }
        let index: Vec<Option<usize>> = needed
            .iter()
            .scan(0, |next, &kept| {
                let at = kept.then_some(*next);
                *next += usize::from(kept);
                Some(at)
            })
            .collect();
        let members: Vec<Member> = (0..renditions.len())
            .filter(|&i| needed[i])
            .map(|i| Member {
                rendition: i,
                encode: pending[i],
                parent: parent[i].and_then(|p| index[p]),
            })
            .collect();
        let groups = groups(members.len(), cores);
        Plan { members, groups }
    }

    /// Entries group `g` passes on to the next group: the pictures later
    /// groups scale from. Empty for the last group.
    pub fn forwarded(&self, g: usize) -> Vec<usize> {
        let Some(end) = self.groups.get(g).map(|r| r.end) else {
            return Vec::new();
        };
        let mut wanted: Vec<usize> = self.members[end..]
            .iter()
            .map(|m| entry(m.parent))
            .filter(|&e| e <= end)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
    }
}

/// Splits `n` members into worker groups: all in one on one core, else one
/// each. On two cores, splitting the benchmark's five renditions into two
/// groups kept 1.74 of the cores busy, a thread each 1.96: a group's
/// renditions wait for each other, while the scheduler fills the cores
/// with independent threads.
pub fn groups(n: usize, cores: usize) -> Vec<Range<usize>> {
    match n {
        0 => Vec::new(),
        _ if cores <= 1 => std::iter::once(0..n).collect(),
        _ => (0..n).map(|i| i..i + 1).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::ladder::Ladder;

    const HD: (u32, u32) = (1920, 1080);

    fn full_hd() -> Vec<Rendition> {
        Ladder::default().plan(1920, 1080)
    }

    #[test]
    fn cascade_scales_each_rung_from_the_next_larger_one() {
        assert_eq!(
            parents(&full_hd(), HD, Scaling::Cascade),
            vec![None, Some(0), Some(1), Some(1), None]
        );
        assert_eq!(parents(&full_hd(), HD, Scaling::Direct), vec![None; 5]);
        // From a larger source, 1080p is a pass of its own.
        assert_eq!(
            parents(&full_hd(), (2560, 1440), Scaling::Cascade),
            vec![None, Some(0), None, None, Some(3)]
        );
    }

    #[test]
    fn one_core_is_one_group_and_enough_cores_one_group_each() {
        let all = [true; 5];
        let plan = Plan::new(&full_hd(), HD, &all, Scaling::Cascade, 1);
        assert_eq!(plan.groups, vec![0..5]);
        assert!(plan.forwarded(0).is_empty());
        let plan = Plan::new(&full_hd(), HD, &all, Scaling::Cascade, 8);
        assert_eq!(plan.groups.len(), 5);
        // 720p is scaled from 1080p, 240p from the source.
        assert_eq!(plan.forwarded(0), vec![0, 1]);
    }

    #[test]
    fn each_group_gets_the_pictures_it_scales_from() {
        let plan = Plan::new(&full_hd(), HD, &[true; 5], Scaling::Cascade, 2);
        assert_eq!(plan.groups.len(), 5);
        // After 1080p: 720p from the 1080p picture (the decoded frame
        // itself on a 1080p source) and 240p from the source; after 720p,
        // 480p and 360p from 720p.
        assert_eq!(plan.forwarded(0), vec![0, 1]);
        assert_eq!(plan.forwarded(1), vec![0, 2]);
        assert_eq!(plan.forwarded(4), Vec::<usize>::new());
        let plan = Plan::new(&full_hd(), HD, &[true; 5], Scaling::Direct, 2);
        assert_eq!(plan.forwarded(0), vec![0]);
    }

    #[test]
    fn a_complete_rendition_is_still_scaled_for_the_pending_one_below_it() {
        let pending = [false, false, true, false, true];
        let plan = Plan::new(&full_hd(), HD, &pending, Scaling::Cascade, 1);
        let kept: Vec<(usize, bool, Option<usize>)> = plan
            .members
            .iter()
            .map(|m| (m.rendition, m.encode, m.parent))
            .collect();
        assert_eq!(
            kept,
            vec![
                (0, false, None),
                (1, false, Some(0)),
                (2, true, Some(1)),
                (4, true, None),
            ]
        );
        let direct = Plan::new(&full_hd(), HD, &pending, Scaling::Direct, 1);
        assert_eq!(
            direct
                .members
                .iter()
                .map(|m| m.rendition)
                .collect::<Vec<_>>(),
            vec![2, 4]
        );
    }

    #[test]
    fn one_core_gets_one_group_more_cores_one_per_rendition() {
        assert_eq!(groups(5, 1), vec![0..5]);
        assert_eq!(groups(3, 2), vec![0..1, 1..2, 2..3]);
        assert!(groups(0, 3).is_empty());
    }
}
