//! Cutting a cue list into WebVTT segments of a fixed duration.
//!
//! Segment `k` covers `[k·d, (k+1)·d)` on the media timeline (the last one
//! ends at the end of the captions). A cue belongs to every segment its
//! `[start, end)` touches and is written there with its own, unchanged
//! times and identifier, so a player that loads neighbouring segments sees
//! one cue, not two. Every segment carries the `X-TIMESTAMP-MAP` header
//! that places cue time 0 at the MPEG-TS time of the video's first frame,
//! and the transcript's STYLE/REGION blocks.

use super::cue::{push_timestamp, Cue};
use super::parse::Transcript;
use std::fmt::Write;

/// MPEG-TS time (90 kHz) of media time 0 in vidpipe's own transcode-hls
/// output, whose timeline starts at 10 s.
pub const DEFAULT_MPEGTS: u64 = 900_000;

/// How a caption track is cut into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Segment duration (ms), > 0.
    pub segment_ms: u64,
    /// MPEG-TS time of cue time 0 (the `X-TIMESTAMP-MAP` offset).
    pub mpegts: u64,
}

impl Layout {
    /// Number of segments needed to cover `total_ms` of media (at least one).
    pub fn count(&self, total_ms: u64) -> u64 {
        total_ms.div_ceil(self.segment_ms).max(1)
    }

    /// Segments that end at or before `ms`: in a transcript whose cues
    /// arrive in time order, a cue starting at `ms` closes them.
    pub fn closed_before(&self, ms: u64) -> u64 {
        ms / self.segment_ms
    }

    /// Duration (ms) of segment `index` when the captions end at `total_ms`.
    pub fn duration(&self, index: u64, total_ms: u64) -> u64 {
        let start = index * self.segment_ms;
        let end = ((index + 1) * self.segment_ms).min(total_ms.max(start + 1));
        end - start
    }

    /// `TARGETDURATION`: the segment duration rounded, as every EXTINF is at
    /// most the segment duration.
    pub fn target_duration(&self) -> u64 {
        self.segment_ms.div_ceil(1000).max(1)
    }

    /// The header every segment starts with.
    pub fn header(&self, blocks: &[String]) -> String {
        let mut out = format!(
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{},LOCAL:00:00:00.000\n\n",
            self.mpegts
        );
        for block in blocks {
            out.push_str(block);
            out.push_str("\n\n");
        }
        out
    }
}

/// For each segment in `range`, the cues it shows, in start order.
pub fn assign(layout: &Layout, cues: &[Cue], range: std::ops::Range<u64>) -> Vec<Vec<usize>> {
    let mut segments = vec![Vec::new(); (range.end - range.start) as usize];
    for (i, cue) in cues.iter().enumerate() {
        let first = (cue.start / layout.segment_ms).max(range.start);
        let last = ((cue.end - 1) / layout.segment_ms).min(range.end.saturating_sub(1));
        for k in first..=last {
            if k >= range.start && k < range.end {
                segments[(k - range.start) as usize].push(i);
            }
        }
    }
    segments
}

/// The text of the segments in `range` of `transcript`.
pub fn render(
    layout: &Layout,
    transcript: &Transcript,
    range: std::ops::Range<u64>,
) -> Vec<String> {
    let header = layout.header(&transcript.blocks);
    assign(layout, &transcript.cues, range)
        .into_iter()
        .map(|members| {
            let mut out = String::with_capacity(header.len() + members.len() * 80);
            out.push_str(&header);
            for i in members {
                push_cue(&mut out, &transcript.cues[i]);
            }
            out
        })
        .collect()
}

fn push_cue(out: &mut String, cue: &Cue) {
    if let Some(id) = &cue.id {
        let _ = writeln!(out, "{id}");
    }
    push_timestamp(out, cue.start);
    out.push_str(" --> ");
    push_timestamp(out, cue.end);
    if !cue.settings.is_empty() {
        out.push(' ');
        out.push_str(&cue.settings);
    }
    out.push('\n');
    if !cue.text.is_empty() {
        out.push_str(&cue.text);
        out.push('\n');
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captions::parse::{parse, Completeness, Format};
    use proptest::prelude::*;

    const LAYOUT: Layout = Layout {
        segment_ms: 4000,
        mpegts: DEFAULT_MPEGTS,
    };

    fn cue(start: u64, end: u64) -> Cue {
        Cue {
            id: None,
            start,
            end,
            settings: String::new(),
            text: "x".into(),
            line: 1,
        }
    }

    #[test]
    fn boundary_cues_go_to_every_segment_they_touch() {
        let cues = [cue(0, 4000), cue(3500, 8001), cue(12_000, 12_500)];
        assert_eq!(
            assign(&LAYOUT, &cues, 0..4),
            vec![vec![0, 1], vec![1], vec![1], vec![2]]
        );
        assert_eq!(assign(&LAYOUT, &cues, 2..4), vec![vec![1], vec![2]]);
    }

    #[test]
    fn durations_and_counts() {
        assert_eq!(LAYOUT.count(10_000), 3);
        assert_eq!(LAYOUT.count(0), 1);
        assert_eq!(LAYOUT.duration(2, 10_000), 2000);
        assert_eq!(LAYOUT.duration(0, 10_000), 4000);
        assert_eq!(LAYOUT.closed_before(7999), 1);
        assert_eq!(LAYOUT.closed_before(8000), 2);
        let odd = Layout {
            segment_ms: 4500,
            mpegts: 0,
        };
        assert_eq!(odd.target_duration(), 5);
    }

    #[test]
    fn segments_snapshot() {
        let text = "WEBVTT\n\nSTYLE\n::cue { color: yellow }\n\nopening\n00:00:01.000 --> 00:00:05.500 line:0\nCrossing <b>the</b> boundary\ntwo lines\n\n00:00:06.000 --> 00:00:07.000\nFish &amp; chips\n\n00:00:13.000 --> 00:00:14.000\nafter a gap\n";
        let t = parse(text.as_bytes(), Format::Vtt, Completeness::Complete).expect("parse");
        let segments = render(&LAYOUT, &t, 0..LAYOUT.count(t.end()));
        insta::assert_snapshot!(segments.join("=====\n"));
    }

    proptest! {
        #[test]
        fn every_cue_is_in_exactly_the_segments_it_overlaps(
            spans in proptest::collection::vec((0u64..60_000, 1u64..20_000), 0..40),
            segment_ms in 500u64..10_000,
        ) {
            let layout = Layout { segment_ms, mpegts: 0 };
            let cues: Vec<Cue> = spans.iter().map(|&(s, d)| cue(s, s + d)).collect();
            let total = cues.iter().map(|c| c.end).max().unwrap_or(0);
            let count = layout.count(total);
            let segments = assign(&layout, &cues, 0..count);
            for (k, members) in segments.iter().enumerate() {
                let (lo, hi) = (k as u64 * segment_ms, (k as u64 + 1) * segment_ms);
                for (i, c) in cues.iter().enumerate() {
                    prop_assert_eq!(members.contains(&i), c.start < hi && c.end > lo);
                }
            }
            let sum: u64 = (0..count).map(|k| layout.duration(k, total)).sum();
            prop_assert_eq!(sum, total.max(1));
        }
    }
}
