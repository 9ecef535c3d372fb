//! `--auto`: from an interval's events to the lines to speak.
//!
//! The strongest events of the interval (at most `per_interval`, a few
//! seconds apart so the voices do not talk over each other) become lines,
//! worded from built-in templates, or by `--writer CMD`: a shell command
//! that receives the interval and its events as JSON on stdin and prints
//! the line to speak (an LLM command line plugs in here). A writer that
//! fails, hangs or prints nothing falls back to the templates, with a
//! warning.

use super::events::{DetectedEvent, EventKind};
use super::script::{format_time, Line, Speech};
use crate::process::run_bounded;
use serde::Serialize;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Smallest gap between two lines of one interval, seconds.
const MIN_GAP: f64 = 4.0;

/// How lines are worded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Wording {
    /// Built-in templates.
    Templates,
    /// A shell command reading JSON on stdin, printing the line.
    Command(String),
}

/// What a `--writer` command receives on stdin.
#[derive(Debug, Serialize)]
pub struct WriterRequest<'a> {
    /// The video, as given.
    pub input: &'a str,
    /// The interval: index, start and end in seconds.
    pub interval: IntervalInfo,
    /// Every event of the interval, in time order.
    pub events: &'a [DetectedEvent],
    /// The events chosen for commentary, strongest first.
    pub chosen: Vec<&'a DetectedEvent>,
}

/// An interval as the writer sees it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IntervalInfo {
    /// Chunk number, from 0.
    pub index: u32,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// The strongest events, at least [`MIN_GAP`] apart, strongest first.
pub fn choose(events: &[DetectedEvent], per_interval: usize) -> Vec<&DetectedEvent> {
    let mut by_strength: Vec<&DetectedEvent> = events.iter().collect();
    by_strength.sort_by(|a, b| {
        b.strength
            .total_cmp(&a.strength)
            .then(a.at.total_cmp(&b.at))
    });
    let mut chosen: Vec<&DetectedEvent> = Vec::new();
    for e in by_strength {
        if chosen.len() >= per_interval {
            break;
        }
        if chosen.iter().all(|c| (c.at - e.at).abs() >= MIN_GAP) {
            chosen.push(e);
        }
    }
    chosen
}

/// A template line for an event (varied by `seed`).
pub fn template(event: &DetectedEvent, seed: usize) -> String {
    let options: &[&str] = match event.kind {
        EventKind::SceneCut => &[
            "And here the scene changes.",
            "A new scene begins.",
            "Cut to something new.",
        ],
        EventKind::Loud => &[
            "That was loud!",
            "Listen to that!",
            "Things are getting loud.",
        ],
        EventKind::Silence => &[
            "A moment of silence.",
            "It goes quiet here.",
            "Silence, for a moment.",
        ],
    };
    options[seed % options.len()].to_string()
}

/// The lines of one interval, and warnings (a writer that failed).
pub fn lines_for(
    input: &str,
    interval: IntervalInfo,
    events: &[DetectedEvent],
    per_interval: usize,
    wording: &Wording,
    timeout: Duration,
    stop: &AtomicBool,
) -> (Vec<Line>, Vec<String>) {
    let chosen = choose(events, per_interval);
    let Some(first) = chosen.first().copied() else {
        return (Vec::new(), Vec::new());
    };
    let origin = |e: &DetectedEvent| {
        let kind = match e.kind {
            EventKind::SceneCut => "scene cut",
            EventKind::Loud => "loud moment",
            EventKind::Silence => "silence",
        };
        format!("auto {} ({kind})", format_time(e.at))
    };
    let templated = |chosen: &[&DetectedEvent]| {
        let mut lines: Vec<Line> = chosen
            .iter()
            .enumerate()
            .map(|(i, e)| Line {
                at: e.at,
                speech: Speech::Text(template(e, interval.index as usize + i)),
                origin: origin(e),
            })
            .collect();
        lines.sort_by(|a, b| a.at.total_cmp(&b.at));
        lines
    };
    match wording {
        Wording::Templates => (templated(&chosen), Vec::new()),
        Wording::Command(cmd) => {
            let request = WriterRequest {
                input,
                interval,
                events,
                chosen: chosen.clone(),
            };
            match run_writer(cmd, &request, timeout, stop) {
                Ok(text) => (
                    vec![Line {
                        at: first.at,
                        speech: Speech::Text(text),
                        origin: origin(first),
                    }],
                    Vec::new(),
                ),
                Err(reason) => (
                    templated(&chosen),
                    vec![format!(
                        "interval {} ({}–{}): the writer failed ({reason}); using the built-in wording",
                        interval.index,
                        format_time(interval.start),
                        format_time(interval.end)
                    )],
                ),
            }
        }
    }
}

fn run_writer(
    cmd: &str,
    request: &WriterRequest<'_>,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<String, String> {
    let json = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let mut command = Command::new("sh");
    command.args(["-c", cmd]);
    let out = run_bounded(command, Some(json), timeout, stop).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        Err("it printed nothing".into())
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, at: f64, strength: f64) -> DetectedEvent {
        DetectedEvent {
            kind,
            at,
            end: None,
            strength,
            value: 0.0,
        }
    }

    #[test]
    fn strongest_events_spaced_apart() {
        let events = [
            event(EventKind::SceneCut, 1.0, 0.5),
            event(EventKind::Loud, 2.0, 0.9),
            event(EventKind::SceneCut, 9.0, 0.7),
            event(EventKind::Silence, 20.0, 0.1),
        ];
        let at: Vec<f64> = choose(&events, 2).iter().map(|e| e.at).collect();
        assert_eq!(at, vec![2.0, 9.0]);
    }

    #[test]
    fn writer_gets_json_and_its_output_is_the_line() {
        let events = [event(EventKind::Loud, 3.0, 0.9)];
        let info = IntervalInfo {
            index: 0,
            start: 0.0,
            end: 10.0,
        };
        let (lines, warnings) = lines_for(
            "clip.mp4",
            info,
            &events,
            2,
            &Wording::Command(
                "python3 -c 'import json,sys; d=json.load(sys.stdin); print(\"kind\", d[\"events\"][0][\"kind\"])'"
                    .into(),
            ),
            Duration::from_secs(20),
            &AtomicBool::new(false),
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].speech, Speech::Text("kind loud".into()));
        assert_eq!(lines[0].at, 3.0);
    }

    #[test]
    fn failing_writer_falls_back_to_templates() {
        let events = [event(EventKind::SceneCut, 3.0, 0.9)];
        let info = IntervalInfo {
            index: 1,
            start: 0.0,
            end: 10.0,
        };
        let (lines, warnings) = lines_for(
            "clip.mp4",
            info,
            &events,
            2,
            &Wording::Command("exit 4".into()),
            Duration::from_secs(20),
            &AtomicBool::new(false),
        );
        assert_eq!(warnings.len(), 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].speech, Speech::Text(template(&events[0], 1)));
    }
}
