//! Transcript writers: the formats [`super::parse`] reads (SubRip, WebVTT,
//! JSON), so a transcript vidpipe makes is one `vidpipe captions` takes.
//!
//! A transcript is written as a head, blocks and a tail, so that a
//! producer can append cue by cue while a reader follows the file: every
//! block ends with a blank line (SRT, WebVTT) or a closing brace (JSON),
//! which is exactly where a growing transcript's reader stops
//! ([`super::parse::Completeness::Growing`]). The JSON array's `]` is the
//! tail, written once the transcript is finished.

use super::cue::{push_timestamp, Cue};
use super::parse::Format;

/// The start of a transcript, before its first cue.
pub fn head(format: Format) -> &'static str {
    match format {
        Format::Srt => "",
        Format::Vtt => "WEBVTT\n\n",
        Format::Json => "[",
    }
}

/// The end of a finished transcript, after its last cue.
pub fn tail(format: Format) -> &'static str {
    match format {
        Format::Srt | Format::Vtt => "",
        Format::Json => "\n]\n",
    }
}

/// One cue as a complete block of `format`; `number` counts cues from 1
/// (SRT's number, the JSON `id`). Cue text is WebVTT cue text (as in
/// [`Cue`]); SRT and JSON get it back as plain text.
pub fn block(format: Format, number: usize, cue: &Cue) -> String {
    let mut out = String::new();
    match format {
        Format::Srt | Format::Vtt => {
            let text = match format {
                Format::Srt => unescape(&cue.text),
                _ => cue.text.clone(),
            };
            out.push_str(&number.to_string());
            out.push('\n');
            let stamp = |ms: u64| {
                let mut t = String::new();
                push_timestamp(&mut t, ms);
                if format == Format::Srt {
                    t = t.replace('.', ",");
                }
                t
            };
            let (start, end) = (stamp(cue.start), stamp(cue.end));
            out.push_str(&format!("{start} --> {end}\n{text}\n\n"));
        }
        Format::Json => {
            let item = serde_json::json!({
                "id": number,
                "start": cue.start as f64 / 1000.0,
                "end": cue.end as f64 / 1000.0,
                "text": unescape(&cue.text),
            });
            let comma = if number > 1 { "," } else { "" };
            out.push_str(&format!("{comma}\n  {item}"));
        }
    }
    out
}

/// A whole transcript of `cues`, numbered from 1.
pub fn render(format: Format, cues: &[Cue]) -> String {
    let mut out = head(format).to_string();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&block(format, i + 1, cue));
    }
    out.push_str(tail(format));
    out
}

/// WebVTT cue text back to plain text (the three escapes WebVTT needs).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captions::cue::escape_text;
    use crate::captions::parse::{parse, Completeness};
    use proptest::prelude::*;

    fn cue(start: u64, end: u64, text: &str) -> Cue {
        Cue {
            id: None,
            start,
            end,
            settings: String::new(),
            text: escape_text(text),
            line: 0,
        }
    }

    #[test]
    fn srt_has_commas_and_numbers() {
        let text = render(Format::Srt, &[cue(1500, 4000, "fish & chips")]);
        assert_eq!(text, "1\n00:00:01,500 --> 00:00:04,000\nfish & chips\n\n");
    }

    #[test]
    fn a_growing_json_transcript_reads_up_to_its_last_cue() {
        let mut text = head(Format::Json).to_string();
        text.push_str(&block(Format::Json, 1, &cue(0, 1000, "one")));
        text.push_str(&block(Format::Json, 2, &cue(1000, 2000, "two")));
        let read = parse(text.as_bytes(), Format::Json, Completeness::Growing).expect("reads");
        assert_eq!(read.cues.len(), 2);
    }

    proptest! {
        #[test]
        fn every_format_reads_back_what_was_written(
            spans in proptest::collection::vec((0u64..10_000_000, 1u64..20_000), 1..20),
            words in proptest::collection::vec("[a-z<&']{1,12}( [a-z']{1,8}){0,5}", 20),
        ) {
            let mut start = 0;
            let cues: Vec<Cue> = spans.iter().zip(&words).map(|((gap, len), text)| {
                start += gap % 100_000;
                cue(start, start + len, text)
            }).collect();
            for format in [Format::Srt, Format::Vtt, Format::Json] {
                let text = render(format, &cues);
                let read = parse(text.as_bytes(), format, Completeness::Complete)
                    .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\n{text}")))?;
                let got: Vec<(u64, u64, &str)> =
                    read.cues.iter().map(|c| (c.start, c.end, c.text.as_str())).collect();
                let want: Vec<(u64, u64, &str)> =
                    cues.iter().map(|c| (c.start, c.end, c.text.as_str())).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
