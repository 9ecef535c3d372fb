//! From recognised utterances to caption cues.
//!
//! The recogniser says what was said and when it noticed the utterance
//! had ended; [`place`] finds when it was said, from the speech spans the
//! level measurement found ([`super::plan`]). [`split`] then cuts an
//! utterance into cues a viewer can read: at most two lines of 42
//! characters and 7 seconds each, the time shared out over the words in
//! proportion to their length, counting only the time someone was
//! speaking.

use std::ops::Range;

/// Longest line of a cue, in characters.
pub const LINE_CHARS: usize = 42;
/// Most lines in a cue.
pub const CUE_LINES: usize = 2;
/// Longest cue, in milliseconds.
pub const CUE_MS: u64 = 7000;

/// An utterance on the chunk's timeline, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// The words, separated by single spaces.
    pub text: String,
    /// When someone was speaking during it (ms, in order, not empty).
    pub speech: Vec<Range<u64>>,
}

impl Utterance {
    /// Start of the speech (ms).
    pub fn start(&self) -> u64 {
        self.speech.first().map_or(0, |s| s.start)
    }

    /// End of the speech (ms).
    pub fn end(&self) -> u64 {
        self.speech.last().map_or(0, |s| s.end)
    }
}

/// A cue's time and plain text (lines joined by `\n`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedText {
    /// Start (ms).
    pub start: u64,
    /// End (ms), after the start.
    pub end: u64,
    /// The text, one or two lines.
    pub text: String,
}

/// Gives each utterance (`closed_at` ms, text) the speech spans that ended
/// before the recogniser closed it and after the previous one was closed.
/// An utterance with no span of its own (speech too quiet to measure) gets
/// the time just before it was closed, as long as its words take to say.
pub fn place(closed: &[(u64, String)], speech: &[Range<u64>]) -> Vec<Utterance> {
    let mut out = Vec::new();
    let mut from = 0u64;
    let mut spans = speech.iter().peekable();
    for (closed_at, text) in closed {
        let mut mine: Vec<Range<u64>> = Vec::new();
        while let Some(span) = spans.next_if(|s| s.end <= *closed_at) {
            if span.start >= from {
                mine.push(span.clone());
            }
        }
        if mine.is_empty() {
            // About 15 characters a second, the recogniser closing some
            // 600 ms after the last word.
            let end = closed_at.saturating_sub(600).max(from + 1);
            let start = end.saturating_sub(text.len() as u64 * 1000 / 15).max(from);
            mine.push(start..end.max(start + 1));
        }
        from = *closed_at;
        out.push(Utterance {
            text: text.clone(),
            speech: mine,
        });
    }
    out
}

/// Cuts `utterance` into cues of at most [`CUE_LINES`] lines of
/// [`LINE_CHARS`] characters (a longer word gets a line of its own) and
/// at most [`CUE_MS`].
pub fn split(utterance: &Utterance) -> Vec<TimedText> {
    let words: Vec<&str> = utterance.text.split_whitespace().collect();
    if words.is_empty() {
        return Vec::new();
    }
    let clock = SpeechClock::new(&utterance.speech, utterance.text.len());
    // Character offset where each word starts, and where the text ends.
    let mut offsets = Vec::with_capacity(words.len() + 1);
    let mut at = 0;
    for w in &words {
        offsets.push(at);
        at += w.len() + 1;
    }
    offsets.push(at.saturating_sub(1));
    let mut cues: Vec<TimedText> = Vec::new();
    let mut first = 0;
    while first < words.len() {
        let mut last = first + 1;
        while last < words.len() {
            let lines = wrap(&words[first..=last]);
            let span = clock.at(offsets[last + 1]) - clock.at(offsets[first]);
            if lines.len() > CUE_LINES || span > CUE_MS {
                break;
            }
            last += 1;
        }
        let previous_end = cues.last().map_or(0, |c| c.end);
        let start = clock.at(offsets[first]).max(previous_end);
        let end = if last == words.len() {
            utterance.end()
        } else {
            clock.at(offsets[last])
        };
        let end = end.clamp(start + 1, start + CUE_MS);
        cues.push(TimedText {
            start,
            end,
            text: wrap(&words[first..last]).join("\n"),
        });
        first = last;
    }
    cues
}

/// Words into lines of at most [`LINE_CHARS`], greedily.
fn wrap(words: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in words {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + w.len() <= LINE_CHARS => {
                line.push(' ');
                line.push_str(w);
            }
            _ => lines.push((*w).to_string()),
        }
    }
    lines
}

/// Maps a character offset of the text to a time: characters share the
/// speech time evenly, pauses between spans take no characters.
struct SpeechClock<'a> {
    spans: &'a [Range<u64>],
    spoken: u64,
    chars: usize,
}

impl<'a> SpeechClock<'a> {
    fn new(spans: &'a [Range<u64>], chars: usize) -> Self {
        SpeechClock {
            spans,
            spoken: spans.iter().map(|s| s.end - s.start).sum(),
            chars: chars.max(1),
        }
    }

    fn at(&self, offset: usize) -> u64 {
        let mut left = self.spoken * offset.min(self.chars) as u64 / self.chars as u64;
        for span in self.spans {
            let len = span.end - span.start;
            if left <= len {
                return span.start + left;
            }
            left -= len;
        }
        self.spans.last().map_or(0, |s| s.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_utterance_gets_the_spans_that_ended_before_it_was_closed() {
        let speech = [1000..2000, 2300..3100, 5000..6000, 9000..9500];
        let closed = [(3700, "one two".to_string()), (6700, "three".to_string())];
        let placed = place(&closed, &speech);
        assert_eq!(placed[0].speech, vec![1000..2000, 2300..3100]);
        assert_eq!(placed[1].speech, vec![5000..6000]);
    }

    #[test]
    fn an_utterance_without_measured_speech_is_placed_before_its_close() {
        let placed = place(&[(4000, "hello there".into())], &[]);
        let u = &placed[0];
        assert!(u.end() <= 4000 && u.start() < u.end(), "{u:?}");
    }

    #[test]
    fn a_short_utterance_is_one_cue_over_its_speech() {
        let u = Utterance {
            text: "he was not an ill disposed young man".into(),
            speech: std::iter::once(500..2900).collect(),
        };
        assert_eq!(
            split(&u),
            vec![TimedText {
                start: 500,
                end: 2900,
                text: "he was not an ill disposed young man".into()
            }]
        );
    }

    proptest! {
        #[test]
        fn cues_are_readable_in_order_and_keep_every_word(
            words in proptest::collection::vec("[a-z']{1,14}", 1..80),
            spans in proptest::collection::vec((0u64..3000, 1u64..20_000), 1..6),
        ) {
            let mut at = 0;
            let speech: Vec<Range<u64>> = spans.iter().map(|&(gap, len)| {
                let s = at + gap;
                at = s + len;
                s..at
            }).collect();
            let u = Utterance { text: words.join(" "), speech };
            let cues = split(&u);
            let said: Vec<String> = cues
                .iter()
                .flat_map(|c| c.text.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect();
            prop_assert_eq!(said, words);
            let mut previous_end = u.start();
            for c in &cues {
                prop_assert!(c.start < c.end);
                prop_assert!(c.end - c.start <= CUE_MS);
                prop_assert!(c.start >= previous_end, "{:?} starts before {}", c, previous_end);
                prop_assert!(c.end <= u.end().max(c.start + 1));
                let lines: Vec<&str> = c.text.lines().collect();
                prop_assert!(lines.len() <= CUE_LINES, "{:?}", c);
                for line in lines {
                    prop_assert!(line.len() <= LINE_CHARS || !line.contains(' '));
                }
                previous_end = c.end;
            }
        }
    }
}
