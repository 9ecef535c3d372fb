//! Reporters the CLI can choose: indicatif bars, NDJSON lines, nothing.
//!
//! Engine events arrive from worker threads; each reporter is internally
//! synchronised. The JSON reporter throttles plain progress to about every
//! 2% per rendition and prints milestones at once.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use vidpipe::progress::{Event, Reporter};

/// NDJSON on stdout (`--progress json`).
#[derive(Default)]
pub struct JsonLines {
    last: Mutex<HashMap<(String, String), f64>>,
}

impl JsonLines {
    fn due(&self, event: &Event) -> bool {
        let (input, rendition, percent) = match event {
            Event::Progress {
                input,
                rendition,
                percent,
            } => (input, rendition.as_str(), percent),
            Event::UploadProgress { input, percent, .. } => (input, "", percent),
            _ => return true,
        };
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let key = (input.clone(), rendition.to_string());
        let previous = last.get(&key).copied().unwrap_or(f64::NEG_INFINITY);
        if *percent - previous >= 2.0 || (*percent >= 100.0 && previous < 100.0) {
            last.insert(key, *percent);
            true
        } else {
            false
        }
    }
}

impl Reporter for JsonLines {
    fn report(&self, event: Event) {
        if !self.due(&event) {
            return;
        }
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) must not kill the encode.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Progress bars on stderr: one per rendition and a weighted overall bar.
pub struct Bars {
    multi: MultiProgress,
    state: Mutex<BarState>,
}

#[derive(Default)]
struct BarState {
    overall: Option<ProgressBar>,
    bars: HashMap<String, (ProgressBar, f64)>,
    /// Uploads: bytes acknowledged per file, for the total bar.
    uploaded: HashMap<String, u64>,
    /// Live captions: segments stored since the start.
    stored: u64,
}

impl Bars {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            state: Mutex::new(BarState::default()),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn update_overall(state: &BarState) {
        if let Some(overall) = &state.overall {
            let done: f64 = state
                .bars
                .values()
                .map(|(bar, weight)| bar.position() as f64 * weight)
                .sum();
            overall.set_position(done.round() as u64);
        }
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            Event::Ladder {
                input,
                renditions,
                weights,
            } => {
                let overall = self.multi.add(ProgressBar::new(1000));
                overall.set_style(Self::style(
                    "{prefix:>10} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
                ));
                overall.set_prefix(vidpipe::inputs::stem_of(&input));
                state.overall = Some(overall);
                state.bars.clear();
                for (name, weight) in renditions.into_iter().zip(weights) {
                    let bar = self.multi.add(ProgressBar::new(1000));
                    bar.set_style(Self::style("{prefix:>10} [{bar:40}] {percent:>3}% {msg}"));
                    bar.set_prefix(name.clone());
                    state.bars.insert(name, (bar, weight));
                }
            }
            Event::Progress {
                rendition, percent, ..
            } => {
                if let Some((bar, _)) = state.bars.get(&rendition) {
                    bar.set_position((percent * 10.0) as u64);
                }
                Self::update_overall(&state);
            }
            Event::SegmentWritten {
                rendition, index, ..
            } => {
                if let Some((bar, _)) = state.bars.get(&rendition) {
                    bar.set_message(format!("segment {index}"));
                }
            }
            Event::RenditionDone {
                rendition,
                segments,
                average_bandwidth,
                ..
            } => {
                if let Some((bar, _)) = state.bars.get(&rendition) {
                    bar.set_position(1000);
                    bar.finish_with_message(format!(
                        "{segments} segments, {} kb/s",
                        average_bandwidth / 1000
                    ));
                }
                Self::update_overall(&state);
            }
            Event::RenditionSkipped { rendition, .. } => {
                if let Some((bar, _)) = state.bars.get(&rendition) {
                    bar.set_position(1000);
                    bar.finish_with_message("already complete");
                }
            }
            Event::ThumbnailReady { path, .. } => {
                let _ = self.multi.println(format!("thumbnail  {path}"));
            }
            Event::Resume { from_segment, .. } => {
                let _ = self
                    .multi
                    .println(format!("resuming from segment {from_segment}"));
            }
            Event::Status {
                stage, done, total, ..
            } => {
                let bar = state.bars.entry(stage.clone()).or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(total.max(1)));
                    bar.set_style(Self::style(
                        "{prefix:>10} [{bar:40}] {pos}/{len} {elapsed_precise}",
                    ));
                    bar.set_prefix(stage.clone());
                    (bar, 0.0)
                });
                bar.0.set_length(total.max(1));
                bar.0.set_position(done);
            }
            Event::ChunkReady { index, path, .. } => {
                let _ = self.multi.println(format!("chunk {index:>4}  {path}"));
            }
            Event::Done { .. } | Event::Error { .. } | Event::Complete { .. } => {
                if let Some(overall) = state.overall.take() {
                    overall.finish_and_clear();
                }
                for (_, (bar, _)) in state.bars.drain() {
                    bar.finish_and_clear();
                }
                let _ = self.multi.clear();
            }
            Event::Initialized {
                input,
                bytes_total,
                parts_done,
                parts_total,
                ..
            } => {
                let template =
                    "{prefix:>16} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
                let overall = state.overall.get_or_insert_with(|| {
                    let total = self.multi.add(ProgressBar::new(0));
                    total.set_style(Self::style(template));
                    total.set_prefix("total");
                    total
                });
                overall.inc_length(bytes_total);
                let bar = self.multi.add(ProgressBar::new(bytes_total.max(1)));
                bar.set_style(Self::style(template));
                bar.set_prefix(vidpipe::inputs::stem_of(&input));
                bar.set_message(format!("{parts_done}/{parts_total} parts"));
                state.bars.insert(input, (bar, 0.0));
            }
            Event::UploadProgress {
                input, bytes_done, ..
            } => {
                if let Some((bar, _)) = state.bars.get(&input) {
                    bar.set_position(bytes_done);
                }
                state.uploaded.insert(input, bytes_done);
                let sum: u64 = state.uploaded.values().sum();
                if let Some(overall) = &state.overall {
                    overall.set_position(sum);
                }
            }
            Event::Uploaded { input, url, .. } => {
                if let Some((bar, _)) = state.bars.remove(&input) {
                    bar.finish_and_clear();
                }
                let _ = self.multi.println(format!("uploaded {input} -> {url}"));
            }
            Event::Tick {
                tick,
                segments,
                objects,
            } => {
                let stored = state.stored;
                let spinner = state.overall.get_or_insert_with(|| {
                    let spinner = self.multi.add(ProgressBar::new_spinner());
                    spinner.set_style(
                        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    spinner
                });
                spinner.set_message(format!(
                    "tick {tick}: +{segments} segment(s), {objects} object(s) stored this tick, {} in all",
                    stored + segments
                ));
                spinner.tick();
                state.stored += segments;
            }
            Event::PlaylistWritten {
                path,
                segments,
                ended: true,
                ..
            } => {
                let _ = self
                    .multi
                    .println(format!("{path}  {segments} segments, ended"));
            }
            Event::CaptionsDone { .. } => {
                if let Some(spinner) = state.overall.take() {
                    spinner.finish_and_clear();
                }
            }
            // Warnings are printed on stderr by the subcommands.
            Event::Probe { .. }
            | Event::PartDone { .. }
            | Event::Presigned { .. }
            | Event::PlaylistWritten { .. }
            | Event::Warning { .. } => {}
        }
    }
}

/// Shows `warning` events (unless `quiet`) and `error` events on stderr,
/// then passes every event on.
struct Console {
    inner: Box<dyn Reporter>,
    quiet: bool,
}

impl Reporter for Console {
    fn report(&self, event: Event) {
        match &event {
            Event::Warning { input, message } if !self.quiet => {
                eprintln!("warning: {input}: {message}")
            }
            Event::Error { input, message } => eprintln!("error: {input}: {message}"),
            _ => {}
        }
        self.inner.report(event);
    }
}

/// The reporter for a resolved `--progress` mode (`auto` already decided
/// against the terminal), with warnings and errors always on stderr.
pub fn console_reporter(shown: super::ProgressMode, quiet: bool) -> Box<dyn Reporter> {
    use super::ProgressMode;
    let inner: Box<dyn Reporter> = match shown {
        ProgressMode::Json => Box::new(JsonLines::default()),
        ProgressMode::Bars => Box::new(Bars::new()),
        ProgressMode::Auto | ProgressMode::None => Box::new(vidpipe::progress::Silent),
    };
    Box::new(Console { inner, quiet })
}
