//! Cues, timestamps, WebVTT text escaping and language tags: the small
//! value types every other part of captions works with.

use std::fmt::Write;

/// One timed caption, with times in milliseconds on the media timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// The cue identifier (SRT's number, WebVTT's identifier line, JSON's
    /// `id`), repeated verbatim in every segment the cue appears in.
    pub id: Option<String>,
    /// Start time (ms).
    pub start: u64,
    /// End time (ms), after `start`.
    pub end: u64,
    /// WebVTT cue settings (`line:0 align:start`), empty when none.
    pub settings: String,
    /// Cue payload as WebVTT cue text: escaped, one or more non-empty lines
    /// joined by `\n`.
    pub text: String,
    /// Line of the transcript where the cue starts, for messages.
    pub line: usize,
}

/// Parses a timestamp: `[hh:]mm:ss.mmm` (WebVTT) or `hh:mm:ss,mmm` (SRT);
/// hours may have any number of digits, minutes and seconds are two digits
/// below 60, the fraction exactly three digits.
pub fn parse_timestamp(text: &str) -> Result<u64, String> {
    let bad =
        || format!("malformed timestamp `{text}`: expected hh:mm:ss.mmm (or hh:mm:ss,mmm in SRT)");
    let (clock, frac) = text.rsplit_once(['.', ',']).ok_or_else(bad)?;
    if frac.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let fields: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match fields.as_slice() {
        [m, s] => ("0", *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    let two_digits = |f: &str| f.len() == 2 && f.bytes().all(|b| b.is_ascii_digit());
    if hours.is_empty()
        || hours.len() > 9
        || !hours.bytes().all(|b| b.is_ascii_digit())
        || !two_digits(minutes)
        || !two_digits(seconds)
    {
        return Err(bad());
    }
    let number = |f: &str| f.parse::<u64>().map_err(|_| bad());
    let (h, m, s, ms) = (
        number(hours)?,
        number(minutes)?,
        number(seconds)?,
        number(frac)?,
    );
    if m > 59 || s > 59 {
        return Err(format!(
            "malformed timestamp `{text}`: minutes and seconds must be below 60"
        ));
    }
    Ok(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// Formats milliseconds as a WebVTT timestamp, `hh:mm:ss.mmm` (hours grow
/// past two digits when needed).
pub fn format_timestamp(ms: u64) -> String {
    let mut out = String::with_capacity(12);
    push_timestamp(&mut out, ms);
    out
}

/// Appends `format_timestamp(ms)` to `out` without allocating.
pub fn push_timestamp(out: &mut String, ms: u64) {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let _ = write!(
        out,
        "{h:02}:{:02}:{:02}.{:03}",
        rest / 60_000,
        rest / 1000 % 60,
        rest % 1000
    );
}

/// Seconds as milliseconds, for JSON transcripts (rounded to the nearest
/// millisecond).
pub fn seconds_to_ms(secs: f64) -> Result<u64, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("time {secs} must be a number of seconds ≥ 0"));
    }
    if secs > 1e9 {
        return Err(format!("time {secs} s is beyond any transcript"));
    }
    Ok((secs * 1000.0).round() as u64)
}

/// Plain text as WebVTT cue text: `&`, `<` and `>` escaped, blank lines
/// dropped (a blank line would end the cue).
pub fn escape_text(plain: &str) -> String {
    escape_keeping_tags(plain, &[])
}

/// Tags of SubRip's formatting that mean the same in WebVTT and are kept as
/// markup; anything else in SRT text is escaped as plain text.
const SRT_TAGS: [&str; 6] = ["<i>", "</i>", "<b>", "</b>", "<u>", "</u>"];

/// SRT text as WebVTT cue text: like [`escape_text`], but SubRip's `<i>`,
/// `<b>` and `<u>` tags stay markup.
pub fn escape_srt_text(text: &str) -> String {
    escape_keeping_tags(text, &SRT_TAGS)
}

fn escape_keeping_tags(text: &str, tags: &[&str]) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut rest = line.trim_end();
        while let Some(c) = rest.chars().next() {
            if c == '<' {
                if let Some(tag) = tags
                    .iter()
                    .find(|t| rest.len() >= t.len() && rest[..t.len()].eq_ignore_ascii_case(t))
                {
                    out.push_str(&tag.to_ascii_lowercase());
                    rest = &rest[tag.len()..];
                    continue;
                }
            }
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_timestamp_styles() {
        assert_eq!(parse_timestamp("00:00:01.500"), Ok(1500));
        assert_eq!(parse_timestamp("01:02:03,004"), Ok(3_723_004));
        assert_eq!(parse_timestamp("59:59.999"), Ok(3_599_999));
        assert_eq!(parse_timestamp("123:00:00.000"), Ok(442_800_000));
        for bad in [
            "",
            "1.5",
            "00:60:00.000",
            "00:00:61.000",
            "0:0:1.000",
            "00:00:01.5",
            "00:00:01",
            "aa:00:01.000",
            "00:00:01.5000",
            "-1:00:00.000",
            "00:00:01.50a",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn escapes_plain_text_and_keeps_srt_formatting() {
        assert_eq!(
            escape_text("Tom & Jerry <3 -> fun\n\n  \nsecond"),
            "Tom &amp; Jerry &lt;3 -&gt; fun\nsecond"
        );
        assert_eq!(
            escape_srt_text("<I>so</i> <script> & more"),
            "<i>so</i> &lt;script&gt; &amp; more"
        );
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(ms in 0u64..1_000_000_000_000) {
            let text = format_timestamp(ms);
            prop_assert_eq!(parse_timestamp(&text), Ok(ms));
            prop_assert_eq!(parse_timestamp(&text.replace('.', ",")), Ok(ms));
        }

        #[test]
        fn short_form_parses_like_long_form(m in 0u64..60, s in 0u64..60, f in 0u64..1000) {
            let short = format!("{m:02}:{s:02}.{f:03}");
            prop_assert_eq!(parse_timestamp(&short), parse_timestamp(&format!("00:{short}")));
        }

        #[test]
        fn escaped_text_never_breaks_a_cue(text in "\\PC*(\n\\PC*){0,3}") {
            let escaped = escape_text(&text);
            prop_assert!(!escaped.contains("-->"));
            prop_assert!(!escaped.contains('<'));
            prop_assert!(!escaped.contains("\n\n"));
            prop_assert!(escaped.lines().all(|l| !l.trim().is_empty()));
        }
    }
}
