//! Transcript parsers: SubRip (`.srt`), WebVTT (`.vtt`) and JSON
//! (`[{"start": secs, "end": secs, "text": "..."}]`) into one cue list.
//!
//! Bytes are checked and normalised first (UTF-8 required, a byte order
//! mark and CRLF line ends are accepted with a warning), then the format's
//! parser builds [`Cue`]s. Problems with one meaning are repaired with a
//! warning (cues out of order, a missing blank line between cues, empty
//! cues); problems that leave the meaning open (a malformed timestamp, a cue
//! ending before it starts, bytes that are not UTF-8) are errors naming
//! the line.
//!
//! A transcript that is still being written ([`Completeness::Growing`]) is
//! read only up to its last complete block, so a cue half-written by the
//! producer is picked up on the next read instead of failing.

use super::cue::{escape_srt_text, escape_text, parse_timestamp, seconds_to_ms, Cue};
use std::path::Path;

/// Transcript formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SubRip.
    Srt,
    /// WebVTT.
    Vtt,
    /// A JSON array of `{start, end, text}` objects.
    Json,
}

impl Format {
    /// The format of `path` from its extension.
    pub fn of(path: &Path) -> Result<Self, String> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "srt" => Ok(Format::Srt),
            "vtt" | "webvtt" => Ok(Format::Vtt),
            "json" => Ok(Format::Json),
            _ => Err(format!(
                "unknown transcript format `.{ext}`: use .srt, .vtt or .json"
            )),
        }
    }
}

/// Whether the transcript is final or may still grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// The whole file is the transcript; an empty one is an error.
    Complete,
    /// Being appended to: only complete blocks count, empty is fine.
    Growing,
}

/// A parsed transcript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// Cues ordered by start time.
    pub cues: Vec<Cue>,
    /// WebVTT STYLE and REGION blocks, verbatim, to repeat in every segment.
    pub blocks: Vec<String>,
    /// Repaired problems, for the user to see.
    pub warnings: Vec<Problem>,
}

impl Transcript {
    /// End of the last cue (ms), 0 when there are none.
    pub fn end(&self) -> u64 {
        self.cues.iter().map(|c| c.end).max().unwrap_or(0)
    }

    /// Start of the latest cue (ms): nothing before it can still change
    /// in a growing transcript whose cues arrive in order.
    pub fn latest_start(&self) -> u64 {
        self.cues.iter().map(|c| c.start).max().unwrap_or(0)
    }
}

/// A problem at a line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct Problem {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn problem(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

/// Parses transcript bytes of `format`.
pub fn parse(
    bytes: &[u8],
    format: Format,
    completeness: Completeness,
) -> Result<Transcript, Problem> {
    let mut warnings = Vec::new();
    let text = decode(bytes, &mut warnings)?;
    let growing = completeness == Completeness::Growing;
    if text.trim().is_empty() {
        return if growing {
            Ok(Transcript {
                warnings,
                ..Transcript::default()
            })
        } else {
            Err(problem(1, "the file is empty: no cues"))
        };
    }
    let mut transcript = match format {
        Format::Srt => parse_blocks(complete_blocks(&text, growing), Dialect::Srt)?,
        Format::Vtt => parse_blocks(complete_blocks(&text, growing), Dialect::Vtt)?,
        Format::Json => parse_json(&text, growing)?,
    };
    warnings.append(&mut transcript.warnings);
    transcript.warnings = warnings;
    if !growing && transcript.cues.is_empty() {
        return Err(problem(1, "no cues in the file"));
    }
    order_cues(&mut transcript);
    Ok(transcript)
}

/// UTF-8 text with the BOM removed and line ends normalised to `\n`.
fn decode(bytes: &[u8], warnings: &mut Vec<Problem>) -> Result<String, Problem> {
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            warnings.push(problem(1, "byte order mark at the start ignored"));
            rest
        }
        None => bytes,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        let column = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        problem(
            line,
            format!(
                "byte 0x{:02X} at column {column} is not UTF-8; save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                bytes[at]
            ),
        )
    })?;
    if text.contains('\r') {
        let line = text[..text.find('\r').unwrap_or(0)].matches('\n').count() + 1;
        warnings.push(problem(line, "CRLF (or CR) line ends read as LF"));
        return Ok(text.replace("\r\n", "\n").replace('\r', "\n"));
    }
    Ok(text.to_string())
}

/// For a growing SRT/WebVTT file: the text up to its last blank line (the
/// block after it may still be half written).
fn complete_blocks(text: &str, growing: bool) -> &str {
    if !growing {
        return text;
    }
    match text.rfind("\n\n") {
        Some(end) => &text[..end + 1],
        None => "",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Srt,
    Vtt,
}

/// SRT and WebVTT share a shape: blocks separated by blank lines, each cue
/// an optional identifier line, a timing line and text lines.
fn parse_blocks(text: &str, dialect: Dialect) -> Result<Transcript, Problem> {
    let mut out = Transcript::default();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).peekable();
    if dialect == Dialect::Vtt {
        match lines.next() {
            Some((_, first))
                if first == "WEBVTT"
                    || first.starts_with("WEBVTT ")
                    || first.starts_with("WEBVTT\t") => {}
            Some(_) => {
                return Err(problem(
                    1,
                    "not a WebVTT file: the first line must be `WEBVTT`",
                ))
            }
            None => return Ok(out),
        }
        // Header lines run to the first blank line.
        while lines.next_if(|(_, l)| !l.trim().is_empty()).is_some() {}
    }
    let mut block: Vec<(usize, &str)> = Vec::new();
    loop {
        let next = lines.next();
        match next {
            Some((n, line)) if !line.trim().is_empty() => {
                block.push((n, line));
                continue;
            }
            _ => {}
        }
        if !block.is_empty() {
            parse_block(&block, dialect, &mut out)?;
            block.clear();
        }
        if next.is_none() {
            return Ok(out);
        }
    }
}

fn is_keyword_block(first: &str, keyword: &str) -> bool {
    first == keyword
        || first
            .strip_prefix(keyword)
            .is_some_and(|rest| rest.starts_with([' ', '\t']))
}

/// One block: a cue (or, after a missing blank line, several), or a WebVTT
/// NOTE, STYLE or REGION block.
fn parse_block(
    block: &[(usize, &str)],
    dialect: Dialect,
    out: &mut Transcript,
) -> Result<(), Problem> {
    let (first_line, first) = block[0];
    if dialect == Dialect::Vtt {
        if is_keyword_block(first, "NOTE") {
            return Ok(());
        }
        if is_keyword_block(first, "STYLE") || is_keyword_block(first, "REGION") {
            if !out.cues.is_empty() {
                out.warnings.push(problem(
                    first_line,
                    "STYLE/REGION block after the first cue; it applies to every segment anyway",
                ));
            }
            let text: Vec<&str> = block.iter().map(|(_, l)| *l).collect();
            out.blocks.push(text.join("\n"));
            return Ok(());
        }
    }
    let mut rest = block;
    while !rest.is_empty() {
        let timing_at = if rest[0].1.contains("-->") {
            0
        } else if rest.len() > 1 && rest[1].1.contains("-->") {
            1
        } else {
            let expected = match dialect {
                Dialect::Srt => {
                    "a cue number or a timing line like `00:00:01,000 --> 00:00:02,500`"
                }
                Dialect::Vtt => {
                    "a cue identifier or a timing line like `00:00:01.000 --> 00:00:02.500`"
                }
            };
            return Err(problem(
                rest[0].0,
                format!("expected {expected}, found `{}`", rest[0].1.trim()),
            ));
        };
        let id = (timing_at == 1).then(|| rest[0].1.trim().to_string());
        let (timing_line, timing) = rest[timing_at];
        let (start, end, settings) =
            parse_timing(timing, dialect).map_err(|m| problem(timing_line, m))?;
        // Text runs to the end of the block, or to the next timing line when
        // the blank line before a cue is missing (its number, in SRT, is the
        // line before that timing line).
        let body = &rest[timing_at + 1..];
        let mut text_len = body
            .iter()
            .position(|(_, l)| l.contains("-->"))
            .unwrap_or(body.len());
        if text_len < body.len() {
            if text_len > 0 && is_cue_number(body[text_len - 1].1, dialect) {
                text_len -= 1;
            }
            out.warnings.push(problem(
                body[text_len].0,
                "missing blank line before this cue; read as a new cue",
            ));
        }
        let lines: Vec<&str> = body[..text_len].iter().map(|(_, l)| *l).collect();
        let raw = lines.join("\n");
        let text = match dialect {
            Dialect::Srt => escape_srt_text(&raw),
            Dialect::Vtt => raw
                .lines()
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n"),
        };
        push_cue(
            out,
            Cue {
                id,
                start,
                end,
                settings,
                text,
                line: timing_line,
            },
        )?;
        rest = &body[text_len..];
    }
    Ok(())
}

fn is_cue_number(line: &str, dialect: Dialect) -> bool {
    dialect == Dialect::Srt
        && !line.trim().is_empty()
        && line.trim().bytes().all(|b| b.is_ascii_digit())
}

/// `start --> end [settings]`. SRT's trailing `X1:… Y2:…` coordinates are
/// dropped; WebVTT settings are kept with their spacing normalised.
fn parse_timing(line: &str, dialect: Dialect) -> Result<(u64, u64, String), String> {
    let (left, right) = line
        .split_once("-->")
        .ok_or_else(|| format!("expected a timing line, found `{line}`"))?;
    let start = parse_timestamp(left.trim())?;
    let mut words = right.split_whitespace();
    let end_text = words
        .next()
        .ok_or_else(|| format!("timing line `{}` has no end time", line.trim()))?;
    let end = parse_timestamp(end_text)?;
    let settings = match dialect {
        Dialect::Srt => String::new(),
        Dialect::Vtt => words.collect::<Vec<_>>().join(" "),
    };
    Ok((start, end, settings))
}

/// Checks a cue's times and adds it; an empty cue (no duration) is dropped
/// with a warning, a cue ending before it starts is an error.
fn push_cue(out: &mut Transcript, cue: Cue) -> Result<(), Problem> {
    if cue.end < cue.start {
        return Err(problem(
            cue.line,
            format!(
                "the cue ends ({}) before it starts ({})",
                super::cue::format_timestamp(cue.end),
                super::cue::format_timestamp(cue.start)
            ),
        ));
    }
    if cue.end == cue.start {
        out.warnings
            .push(problem(cue.line, "cue with no duration dropped"));
        return Ok(());
    }
    out.cues.push(cue);
    Ok(())
}

#[derive(serde::Deserialize)]
struct JsonCue {
    start: f64,
    end: f64,
    text: String,
    #[serde(default)]
    id: Option<JsonId>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum JsonId {
    Text(String),
    Number(u64),
}

/// A JSON array of cues. Unknown keys (speaker, confidence, words…) are
/// ignored. A growing file is read up to its last complete object.
fn parse_json(text: &str, growing: bool) -> Result<Transcript, Problem> {
    let closed;
    let text = if growing {
        let Some(last) = text.rfind('}') else {
            return Ok(Transcript::default());
        };
        closed = format!("{}]", &text[..=last]);
        closed.as_str()
    } else {
        text
    };
    let raw: Vec<JsonCue> = serde_json::from_str(text).map_err(|e| {
        problem(
            e.line().max(1),
            format!("not a JSON array of {{start, end, text}} cues: {e}"),
        )
    })?;
    let lines = element_lines(text);
    let mut out = Transcript::default();
    for (i, item) in raw.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let start = seconds_to_ms(item.start).map_err(|m| problem(line, format!("start: {m}")))?;
        let end = seconds_to_ms(item.end).map_err(|m| problem(line, format!("end: {m}")))?;
        let id = match item.id {
            Some(JsonId::Text(t)) if !t.contains("-->") && !t.trim().is_empty() => {
                Some(t.trim().to_string())
            }
            Some(JsonId::Number(n)) => Some(n.to_string()),
            _ => Some((i + 1).to_string()),
        };
        push_cue(
            &mut out,
            Cue {
                id,
                start,
                end,
                settings: String::new(),
                text: escape_text(&item.text),
                line,
            },
        )?;
    }
    Ok(out)
}

/// Line numbers where each element of the top-level JSON array starts.
fn element_lines(text: &str) -> Vec<usize> {
    let (mut depth, mut in_string, mut escaped, mut line) = (0usize, false, false, 1usize);
    let mut lines = Vec::new();
    for c in text.chars() {
        match c {
            '\n' => line += 1,
            _ if in_string => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            }
            '"' => in_string = true,
            '{' | '[' => {
                if depth == 1 && c == '{' {
                    lines.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    lines
}

/// Sorts cues by start time (stable, so equal starts keep file order),
/// warning once when the file was out of order and once when cues overlap.
fn order_cues(t: &mut Transcript) {
    if let Some(w) = t.cues.windows(2).find(|w| w[1].start < w[0].start) {
        t.warnings.push(problem(
            w[1].line,
            format!(
                "cues are not in time order (this one starts before the cue at line {}); sorted by start time",
                w[0].line
            ),
        ));
        t.cues.sort_by_key(|c| c.start);
    }
    let mut latest_end = 0u64;
    let mut overlapping: Option<usize> = None;
    let mut count = 0usize;
    for cue in &t.cues {
        if cue.start < latest_end {
            count += 1;
            overlapping.get_or_insert(cue.line);
        }
        latest_end = latest_end.max(cue.end);
    }
    if let Some(line) = overlapping {
        t.warnings.push(problem(
            line,
            format!("{count} cue(s) overlap an earlier cue; overlapping cues are shown together"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srt(text: &str) -> Result<Transcript, Problem> {
        parse(text.as_bytes(), Format::Srt, Completeness::Complete)
    }

    fn vtt(text: &str) -> Result<Transcript, Problem> {
        parse(text.as_bytes(), Format::Vtt, Completeness::Complete)
    }

    fn json(text: &str) -> Result<Transcript, Problem> {
        parse(text.as_bytes(), Format::Json, Completeness::Complete)
    }

    #[test]
    fn srt_cues_with_numbers_multiline_text_and_formatting() {
        let t = srt("1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>\nTom & Jerry\n\n2\n00:00:03,000 --> 00:00:04,000 X1:10 X2:20\n<b>bold</b> a<b\n").expect("parse");
        assert_eq!(t.cues.len(), 2);
        assert_eq!(t.cues[0].id.as_deref(), Some("1"));
        assert_eq!((t.cues[0].start, t.cues[0].end), (1000, 2500));
        assert_eq!(t.cues[0].text, "Hello <i>there</i>\nTom &amp; Jerry");
        assert_eq!(t.cues[1].text, "<b>bold</b> a&lt;b");
        assert_eq!(t.cues[1].settings, "");
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn vtt_keeps_identifiers_settings_styles_and_skips_notes() {
        let t = vtt("WEBVTT - a title\nKind: captions\n\nSTYLE\n::cue { color: yellow }\n\nNOTE a comment\nspanning lines\n\nintro\n00:01.000 --> 00:02.000 line:0   align:start\n<v Ann>Hi &amp; bye\nsecond line\n\n00:00:03.000 --> 00:00:04.000\nno id\n").expect("parse");
        assert_eq!(t.blocks, vec!["STYLE\n::cue { color: yellow }".to_string()]);
        assert_eq!(t.cues.len(), 2);
        assert_eq!(t.cues[0].id.as_deref(), Some("intro"));
        assert_eq!(t.cues[0].settings, "line:0 align:start");
        assert_eq!(t.cues[0].text, "<v Ann>Hi &amp; bye\nsecond line");
        assert_eq!(t.cues[1].id, None);
    }

    #[test]
    fn json_cues_get_ids_and_escaped_text() {
        let t = json("[\n {\"start\": 1.5, \"end\": 2, \"text\": \"a < b\"},\n {\"start\": 2, \"end\": 3.25, \"text\": \"x\", \"id\": \"outro\", \"speaker\": \"B\"}\n]").expect("parse");
        assert_eq!(t.cues[0].id.as_deref(), Some("1"));
        assert_eq!(t.cues[0].text, "a &lt; b");
        assert_eq!((t.cues[1].start, t.cues[1].end), (2000, 3250));
        assert_eq!(t.cues[1].id.as_deref(), Some("outro"));
        assert_eq!(t.cues[1].line, 3);
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            srt("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:04,000\nbad\n")
                .expect_err("should fail");
        assert_eq!(e.line, 6);
        assert!(e.message.contains("malformed timestamp"), "{e}");
        let e = srt("1\n00:00:05,000 --> 00:00:04,000\nbackwards\n").expect_err("should fail");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("before it starts"), "{e}");
        let e = srt("1\nHello\n").expect_err("should fail");
        assert_eq!(e.line, 1);
        let e = vtt("1\n00:00:01.000 --> 00:00:02.000\nx\n").expect_err("should fail");
        assert!(e.message.contains("WEBVTT"), "{e}");
        let e = json("[{\"start\": 1, \"end\": 2, \"text\": \"a\"},\n{\"start\": 3, \"end\": 2, \"text\": \"b\"}]").expect_err("should fail");
        assert_eq!(e.line, 2);
        let e = json("[{\"start\": 1, \"end\": 2,\n \"text\": }]").expect_err("should fail");
        assert_eq!(e.line, 2);
        let e = srt("").expect_err("should fail");
        assert!(e.message.contains("empty"), "{e}");
        let e = parse(
            b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xE9\n",
            Format::Srt,
            Completeness::Complete,
        )
        .expect_err("should fail");
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("0xE9") && e.message.contains("column 4"),
            "{e}"
        );
    }

    #[test]
    fn repairs_bom_crlf_order_and_missing_blank_lines_with_warnings() {
        let text = "\u{FEFF}1\r\n00:00:05,000 --> 00:00:06,000\r\nlate\r\n2\r\n00:00:01,000 --> 00:00:02,000\r\nearly\r\n";
        let t = srt(text).expect("parse");
        assert_eq!(t.cues.len(), 2);
        assert_eq!(t.cues[0].text, "early");
        assert_eq!(t.cues[0].id.as_deref(), Some("2"));
        assert_eq!(t.cues[1].text, "late");
        let messages: Vec<String> = t.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].contains("byte order mark"));
        assert!(messages[1].contains("CRLF"));
        assert!(messages[2].starts_with("line 4: missing blank line"));
        assert!(messages[3].contains("not in time order"));
    }

    #[test]
    fn growing_files_stop_at_the_last_complete_block() {
        let text = "1\n00:00:01,000 --> 00:00:02,000\ndone\n\n2\n00:00:0";
        let t = parse(text.as_bytes(), Format::Srt, Completeness::Growing).expect("parse");
        assert_eq!(t.cues.len(), 1);
        assert!(srt(text).is_err());
        let t = parse(b"", Format::Vtt, Completeness::Growing).expect("empty is fine");
        assert!(t.cues.is_empty());
        let t = parse(b"WEBVTT\n", Format::Vtt, Completeness::Growing).expect("header only");
        assert!(t.cues.is_empty());
        let text = "[{\"start\": 1, \"end\": 2, \"text\": \"a\"},\n{\"start\": 3, \"end\": 4, \"te";
        let t = parse(text.as_bytes(), Format::Json, Completeness::Growing).expect("parse");
        assert_eq!(t.cues.len(), 1);
    }

    #[test]
    fn zero_length_cues_are_dropped_and_overlaps_warned() {
        let t = vtt("WEBVTT\n\n00:01.000 --> 00:01.000\nnothing\n\n00:02.000 --> 00:05.000\na\n\n00:03.000 --> 00:04.000\nb\n").expect("parse");
        assert_eq!(t.cues.len(), 2);
        assert_eq!(t.warnings.len(), 2);
        assert!(t.warnings[1].message.contains("overlap"));
    }
}
