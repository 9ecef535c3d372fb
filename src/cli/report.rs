//! Reporters the CLI can choose: indicatif bars, NDJSON lines, nothing;
//! and the console in front of them that puts warnings and errors on stderr.
//!
//! Engine events arrive from worker threads; each reporter is internally
//! synchronised. `main` builds its reporter with [`console_reporter`]: a
//! [`Console`] prints `warning: <input>: <message>` (unless `-q`) and
//! `error: <input>: <message>` (always) for the matching events, above the
//! bars when bars are drawn, then hands every event to the chosen reporter.
//! Callers therefore only report an `Error` event; they never print it.
//!
//! The bars are grouped by input: a transcode's rendition bars and weighted
//! overall bar, a commentary's stage bars, an upload's file bar under a
//! total over every file, and the live captions spinner. An input that
//! finishes or fails clears its own bars only; the other inputs' bars and
//! the upload total go on.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use vidpipe::progress::{Count, Event, Position, Reporter, Silent, Throttle};

/// What `--progress` shows, once `auto` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Progress bars on stderr, whether or not it is a terminal.
    Bars,
    /// NDJSON events on stdout.
    Json,
    /// No progress.
    None,
}

/// The reporter every subcommand gets: `shown` progress behind a
/// [`Console`] that prints warnings (unless `quiet`) and errors on stderr.
pub fn console_reporter(shown: Shown, quiet: bool) -> Box<dyn Reporter> {
    match shown {
        Shown::Bars => Box::new(Console::over_bars(Bars::new(), quiet)),
        Shown::Json => Box::new(Console::new(Box::new(JsonLines::default()), quiet)),
        Shown::None => Box::new(Console::new(Box::new(Silent), quiet)),
    }
}

/// Prints `Warning` and `Error` events on stderr, then passes every event
/// on. The one place such lines are printed: whoever reports an error only
/// reports it.
pub struct Console {
    inner: Box<dyn Reporter>,
    /// The bars `inner` draws, which lines must go above.
    bars: Option<MultiProgress>,
    quiet: bool,
}

impl Console {
    /// A console in front of `inner`, printing on plain stderr; `quiet`
    /// (`-q`) leaves warnings out.
    pub fn new(inner: Box<dyn Reporter>, quiet: bool) -> Self {
        Console {
            inner,
            bars: None,
            quiet,
        }
    }

    /// A console in front of `bars`, printing above them so they are not
    /// torn.
    pub fn over_bars(bars: Bars, quiet: bool) -> Self {
        let multi = bars.multi.clone();
        Console {
            inner: Box::new(bars),
            bars: Some(multi),
            quiet,
        }
    }

    /// The stderr line `event` gets, if any.
    fn line(&self, event: &Event) -> Option<String> {
        match event {
            Event::Warning { input, message } if !self.quiet => {
                Some(format!("warning: {input}: {message}"))
            }
            Event::Error { input, message } => Some(format!("error: {input}: {message}")),
            // A pipeline step's own warning or error, named by the input
            // as the pipeline knows it, and the step.
            Event::Step(step) => self.line(&step.event).map(|line| {
                let subject = match step.event.as_ref() {
                    Event::Warning { input, .. } | Event::Error { input, .. } => input,
                    _ => &step.input,
                };
                let (kind, rest) = line.split_once(": ").unwrap_or(("", &line));
                let rest = rest.strip_prefix(&format!("{subject}: ")).unwrap_or(rest);
                let about = if subject == &step.input {
                    step.input.clone()
                } else {
                    format!("{} ({subject})", step.input)
                };
                format!("{kind}: {about}: {}: {rest}", step.step)
            }),
            _ => None,
        }
    }

    fn print(&self, line: &str) {
        match &self.bars {
            Some(multi) if !multi.is_hidden() => {
                let _ = multi.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

impl Reporter for Console {
    fn report(&self, event: Event) {
        if let Some(line) = self.line(&event) {
            self.print(&line);
        }
        self.inner.report(event);
    }
}

/// NDJSON on stdout (`--progress json`), plain progress throttled to about
/// every 2% per rendition, milestones at once.
pub struct JsonLines {
    throttle: Throttle,
}

impl Default for JsonLines {
    fn default() -> Self {
        JsonLines {
            throttle: Throttle::new(Throttle::JSON_STEP),
        }
    }
}

impl Reporter for JsonLines {
    fn report(&self, event: Event) {
        if !self.throttle.admits(&event) {
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

/// Progress bars on stderr, grouped by input (see the module docs).
pub struct Bars {
    multi: MultiProgress,
    state: Mutex<BarState>,
}

/// Every input's bars.
#[derive(Default)]
struct BarState {
    /// Where each probed input stands in its batch (`3/12 `), for its bars.
    positions: HashMap<String, String>,
    /// Transcodes by input.
    transcodes: HashMap<String, Transcode>,
    /// Commentary stages by input.
    stages: HashMap<String, Stages>,
    /// Uploads: file bars by input and their total.
    uploads: Uploads,
    /// Live captions.
    live: Option<LiveSpinner>,
    /// A prune: files deleted so far.
    prune: Option<(ProgressBar, Count)>,
    /// A pipeline run: its inputs' lines and the overall one.
    pipeline: Option<Pipeline>,
}

impl Bars {
    /// Bars drawn on stderr, even when it is not a terminal (`--progress
    /// bars` asks for them; `auto` only picks bars on a terminal).
    pub fn new() -> Self {
        let stderr = console::Term::buffered_stderr();
        Self::with_target(ProgressDrawTarget::term_like_with_hz(Box::new(stderr), 20))
    }

    /// Bars drawn on `target`.
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            state: Mutex::new(BarState::default()),
        }
    }

    /// Prints a line above the bars.
    fn println(&self, line: String) {
        let _ = self.multi.println(line);
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            Event::Probe {
                input,
                index,
                total,
                ..
            } => {
                let label = Position::nth(index.saturating_sub(1), total).label();
                state.positions.insert(input, label);
            }
            Event::Ladder { .. }
            | Event::Progress { .. }
            | Event::SegmentWritten { .. }
            | Event::RenditionDone { .. }
            | Event::RenditionSkipped { .. }
            | Event::ThumbnailReady { .. }
            | Event::Resume { .. }
            | Event::Done { .. } => self.transcode(&mut state, event),
            Event::Status { .. } | Event::ChunkReady { .. } | Event::Complete { .. } => {
                self.commentary(&mut state, event)
            }
            Event::TranscriptDone { input, path, .. } => {
                self.println(format!("transcript  {path}"));
                if let Some(stages) = state.stages.remove(&input) {
                    stages.clear(&self.multi);
                }
                state.clear_when_idle(&self.multi);
            }
            // Transcribe's bars follow its `Status` events.
            Event::ChunkTranscribed { .. } | Event::TranscriptCue { .. } => {}
            Event::Initialized { .. } | Event::UploadProgress { .. } | Event::Uploaded { .. } => {
                self.upload(&mut state, event)
            }
            Event::Tick { .. } | Event::PlaylistWritten { .. } | Event::CaptionsDone { .. } => {
                self.captions(&mut state, event)
            }
            Event::Deleted { .. } | Event::PruneSummary { .. } => self.prune(&mut state, event),
            Event::RunStarted { .. }
            | Event::StepStarted { .. }
            | Event::Step(_)
            | Event::StepDone { .. }
            | Event::StepSkipped { .. }
            | Event::StepFailed { .. }
            | Event::InputDone { .. }
            | Event::RunSummary(_) => self.pipeline(&mut state, event),
            Event::StepPlanned { .. } => {}
            Event::Error { input, .. } => {
                state.fail(&self.multi, &input);
                state.clear_when_idle(&self.multi);
            }
            // Warnings and errors are printed by the [`Console`].
            Event::PartDone { .. } | Event::Presigned { .. } | Event::UploadAdopted { .. } => {}
            Event::Warning { .. } | Event::Kept { .. } | Event::UploadAborted { .. } => {}
        }
    }
}

/// One handler per kind of job: each takes the events of its kind.
impl Bars {
    fn transcode(&self, state: &mut BarState, event: Event) {
        let multi = &self.multi;
        match event {
            Event::Ladder {
                input,
                renditions,
                weights,
            } => {
                let label = state.positions.remove(&input).unwrap_or_default();
                let transcode = Transcode::new(multi, &input, &label, renditions, weights);
                if let Some(old) = state.transcodes.insert(input, transcode) {
                    old.clear(multi);
                }
            }
            Event::Progress {
                input,
                rendition,
                percent,
            } => {
                if let Some(transcode) = state.transcodes.get(&input) {
                    transcode.progress(&rendition, percent);
                }
            }
            Event::SegmentWritten {
                input,
                rendition,
                index,
                ..
            } => {
                if let Some(bar) = state.transcodes.get(&input).and_then(|t| t.bar(&rendition)) {
                    bar.set_message(format!("segment {index}"));
                }
            }
            Event::RenditionDone {
                input,
                rendition,
                segments,
                average_bandwidth,
                ..
            } => {
                if let Some(transcode) = state.transcodes.get(&input) {
                    let kbps = average_bandwidth / 1000;
                    transcode.finish(&rendition, format!("{segments} segments, {kbps} kb/s"));
                }
            }
            Event::RenditionSkipped { input, rendition } => {
                if let Some(transcode) = state.transcodes.get(&input) {
                    transcode.finish(&rendition, "already complete".into());
                }
            }
            Event::ThumbnailReady { path, .. } => self.println(format!("thumbnail  {path}")),
            Event::Resume { from_segment, .. } => {
                self.println(format!("resuming from segment {from_segment}"));
            }
            Event::Done { input, .. } => {
                if let Some(transcode) = state.transcodes.remove(&input) {
                    transcode.clear(multi);
                }
                state.clear_when_idle(multi);
            }
            _ => {}
        }
    }

    fn commentary(&self, state: &mut BarState, event: Event) {
        let multi = &self.multi;
        match event {
            Event::Status {
                input,
                stage,
                done,
                total,
            } => state
                .stages
                .entry(input)
                .or_default()
                .advance(multi, &stage, done, total),
            Event::ChunkReady { index, path, .. } => {
                self.println(format!("chunk {index:>4}  {path}"));
            }
            Event::Complete { input, .. } => {
                if let Some(stages) = state.stages.remove(&input) {
                    stages.clear(multi);
                }
                state.clear_when_idle(multi);
            }
            _ => {}
        }
    }

    fn upload(&self, state: &mut BarState, event: Event) {
        let multi = &self.multi;
        match event {
            Event::Initialized {
                input,
                index,
                total,
                bytes_total,
                ..
            } => {
                let name = format!(
                    "{}{}",
                    Position::nth(index.saturating_sub(1), total).label(),
                    vidpipe::inputs::stem_of(&input)
                );
                state.uploads.start(multi, input, name, bytes_total);
            }
            Event::UploadProgress {
                input, bytes_done, ..
            } => state.uploads.advance(&input, bytes_done),
            // The CLI prints one summary line per file (with bytes and
            // resumed parts) once the bars are gone.
            Event::Uploaded { input, .. } => state.uploads.finish(multi, &input),
            _ => {}
        }
    }

    fn captions(&self, state: &mut BarState, event: Event) {
        match event {
            Event::Tick {
                tick,
                segments,
                objects,
            } => state
                .live
                .get_or_insert_with(|| LiveSpinner::new(&self.multi))
                .tick(tick, segments, objects),
            Event::PlaylistWritten {
                path,
                segments,
                ended: true,
                ..
            } => self.println(format!("{path}  {segments} segments, ended")),
            Event::CaptionsDone { .. } => {
                if let Some(live) = state.live.take() {
                    clear(&self.multi, &live.spinner);
                }
            }
            _ => {}
        }
    }
}

impl Bars {
    fn prune(&self, state: &mut BarState, event: Event) {
        match event {
            Event::Deleted { bytes, dry_run, .. } => {
                let (spinner, deleted) = state
                    .prune
                    .get_or_insert_with(|| (spinner(&self.multi), Count::default()));
                deleted.add(bytes);
                let verb = if dry_run { "to delete" } else { "deleted" };
                spinner.set_message(format!(
                    "prune: {} files {verb} ({})",
                    deleted.files,
                    indicatif::HumanBytes(deleted.bytes)
                ));
                spinner.tick();
            }
            Event::PruneSummary { .. } => {
                if let Some((spinner, _)) = state.prune.take() {
                    clear(&self.multi, &spinner);
                }
            }
            _ => {}
        }
    }
}

impl Bars {
    /// A pipeline shows one line per running input (its step and how far
    /// that step is) under an overall line of inputs done; the steps' own
    /// bars are not drawn.
    fn pipeline(&self, state: &mut BarState, event: Event) {
        let multi = &self.multi;
        if let Event::RunStarted { share, .. } = &event {
            let overall = add_bar(
                multi,
                share.kept as u64,
                "{prefix:>16} [{bar:40}] {pos}/{len} inputs {elapsed_precise}",
                "pipeline".into(),
            );
            overall.enable_steady_tick(std::time::Duration::from_millis(500));
            state.pipeline = Some(Pipeline {
                overall,
                inputs: HashMap::new(),
            });
            return;
        }
        let Some(pipeline) = state.pipeline.as_mut() else {
            return;
        };
        match event {
            Event::StepStarted {
                input,
                step,
                resume,
            } => {
                let line = pipeline.inputs.entry(input.clone()).or_insert_with(|| {
                    let template = "{prefix:>16} [{bar:40}] {percent:>3}% {msg}";
                    let bar = add_bar(multi, 1000, template, vidpipe::inputs::stem_of(&input));
                    InputLine {
                        bar,
                        weights: HashMap::new(),
                    }
                });
                line.bar.set_position(0);
                line.bar.set_message(if resume {
                    format!("{step} (resuming)")
                } else {
                    step
                });
            }
            Event::Step(step) => {
                if let Some(line) = pipeline.inputs.get_mut(&step.input) {
                    line.advance(&step.event);
                }
            }
            Event::StepDone { input, .. } => {
                if let Some(line) = pipeline.inputs.get(&input) {
                    line.bar.set_position(1000);
                }
            }
            Event::InputDone { input, .. } => {
                if let Some(line) = pipeline.inputs.remove(&input) {
                    clear(multi, &line.bar);
                }
                pipeline.overall.inc(1);
            }
            Event::RunSummary(_) => {
                if let Some(pipeline) = state.pipeline.take() {
                    for line in pipeline.inputs.values() {
                        clear(multi, &line.bar);
                    }
                    clear(multi, &pipeline.overall);
                }
            }
            _ => {}
        }
    }
}

/// A pipeline run's bars.
struct Pipeline {
    overall: ProgressBar,
    inputs: HashMap<String, InputLine>,
}

/// One running input of a pipeline: its bar (the current step, in
/// thousandths) and, for a transcode, each rendition's share of the work.
struct InputLine {
    bar: ProgressBar,
    weights: HashMap<String, (f64, f64)>,
}

impl InputLine {
    /// Moves the bar on from a step's own event.
    fn advance(&mut self, event: &Event) {
        match event {
            Event::Ladder {
                renditions,
                weights,
                ..
            } => {
                self.weights = renditions
                    .iter()
                    .cloned()
                    .zip(weights.iter().map(|&w| (w, 0.0)))
                    .collect();
            }
            Event::Progress {
                rendition, percent, ..
            } => {
                if let Some(entry) = self.weights.get_mut(rendition) {
                    entry.1 = *percent;
                }
                let done: f64 = self.weights.values().map(|(w, p)| w * p).sum();
                self.bar.set_position((done * 10.0).round() as u64);
            }
            Event::Status {
                stage, done, total, ..
            } if stage == "chunks" => {
                self.bar.set_position(done * 1000 / (*total).max(1));
            }
            _ => {}
        }
    }
}

impl BarState {
    /// `input` failed: its bars go, whatever kind they are.
    fn fail(&mut self, multi: &MultiProgress, input: &str) {
        if let Some(transcode) = self.transcodes.remove(input) {
            transcode.clear(multi);
        }
        if let Some(stages) = self.stages.remove(input) {
            stages.clear(multi);
        }
        self.uploads.fail(multi, input);
    }

    /// Wipes the bars from the terminal once no input has any left, so
    /// what is printed next starts on a clean line.
    fn clear_when_idle(&self, multi: &MultiProgress) {
        let idle = self.transcodes.is_empty()
            && self.stages.is_empty()
            && !self.uploads.running()
            && self.live.is_none()
            && self.prune.is_none()
            && self.pipeline.is_none();
        if idle {
            let _ = multi.clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar of `len` units at the bottom of `multi`.
fn add_bar(multi: &MultiProgress, len: u64, template: &str, prefix: String) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(len));
    bar.set_style(style(template));
    bar.set_prefix(prefix);
    bar
}

/// Takes `bar` off the terminal and out of `multi`.
fn clear(multi: &MultiProgress, bar: &ProgressBar) {
    bar.finish_and_clear();
    multi.remove(bar);
}

/// A transcode: a bar per rendition (in thousandths) and an overall bar,
/// their sum weighted by each rendition's share of the work.
struct Transcode {
    overall: ProgressBar,
    renditions: HashMap<String, (ProgressBar, f64)>,
}

impl Transcode {
    /// Bars for `input`, its name led by `label` (its place in the batch).
    fn new(
        multi: &MultiProgress,
        input: &str,
        label: &str,
        names: Vec<String>,
        weights: Vec<f64>,
    ) -> Self {
        let overall = add_bar(
            multi,
            1000,
            "{prefix:>10} [{bar:40}] {percent:>3}% {elapsed_precise} eta {eta}",
            format!("{label}{}", vidpipe::inputs::stem_of(input)),
        );
        let renditions = names
            .into_iter()
            .zip(weights)
            .map(|(name, weight)| {
                let template = "{prefix:>10} [{bar:40}] {percent:>3}% {msg}";
                let bar = add_bar(multi, 1000, template, name.clone());
                (name, (bar, weight))
            })
            .collect();
        Transcode {
            overall,
            renditions,
        }
    }

    fn bar(&self, rendition: &str) -> Option<&ProgressBar> {
        self.renditions.get(rendition).map(|(bar, _)| bar)
    }

    fn progress(&self, rendition: &str, percent: f64) {
        if let Some(bar) = self.bar(rendition) {
            bar.set_position((percent * 10.0) as u64);
        }
        self.update_overall();
    }

    /// A rendition is complete (encoded now or earlier): full, with `message`.
    fn finish(&self, rendition: &str, message: String) {
        if let Some(bar) = self.bar(rendition) {
            bar.set_position(1000);
            bar.finish_with_message(message);
        }
        self.update_overall();
    }

    fn update_overall(&self) {
        let done: f64 = self
            .renditions
            .values()
            .map(|(bar, weight)| bar.position() as f64 * weight)
            .sum();
        self.overall.set_position(done.round() as u64);
    }

    fn clear(self, multi: &MultiProgress) {
        clear(multi, &self.overall);
        for (bar, _) in self.renditions.values() {
            clear(multi, bar);
        }
    }
}

/// A commentary's stages, a bar each (`events`, `speech`, `chunks`).
#[derive(Default)]
struct Stages(HashMap<String, ProgressBar>);

impl Stages {
    fn advance(&mut self, multi: &MultiProgress, stage: &str, done: u64, total: u64) {
        let bar = self.0.entry(stage.to_string()).or_insert_with(|| {
            let template = "{prefix:>10} [{bar:40}] {pos}/{len} {elapsed_precise}";
            let bar = add_bar(multi, total.max(1), template, stage.to_string());
            // Stages advance seldom (a chunk takes seconds): keep the
            // elapsed time moving in between.
            bar.enable_steady_tick(std::time::Duration::from_millis(500));
            bar
        });
        bar.set_length(total.max(1));
        bar.set_position(done);
    }

    fn clear(self, multi: &MultiProgress) {
        for bar in self.0.values() {
            clear(multi, bar);
        }
    }
}

const UPLOAD_TEMPLATE: &str =
    "{prefix:>16} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";

/// Uploads: a bar per file in flight and a total over every file.
#[derive(Default)]
struct Uploads {
    total: Option<ProgressBar>,
    files: HashMap<String, UploadFile>,
}

/// One file's bytes, and its bar while it uploads.
struct UploadFile {
    bar: Option<ProgressBar>,
    done: u64,
    size: u64,
}

impl Uploads {
    /// A bar for `input` shown as `name`.
    fn start(&mut self, multi: &MultiProgress, input: String, name: String, size: u64) {
        let total = self
            .total
            .get_or_insert_with(|| add_bar(multi, 0, UPLOAD_TEMPLATE, "total".into()));
        total.inc_length(size);
        let bar = add_bar(multi, size.max(1), UPLOAD_TEMPLATE, name);
        let file = UploadFile {
            bar: Some(bar),
            done: 0,
            size,
        };
        if let Some(old) = self.files.insert(input, file) {
            self.forget(multi, old);
        }
        self.update_total();
    }

    fn advance(&mut self, input: &str, done: u64) {
        if let Some(file) = self.files.get_mut(input) {
            file.done = done;
            if let Some(bar) = &file.bar {
                bar.set_position(done);
            }
        }
        self.update_total();
    }

    /// `input` is stored: its bar goes, its bytes count as done.
    fn finish(&mut self, multi: &MultiProgress, input: &str) {
        if let Some(file) = self.files.get_mut(input) {
            file.done = file.size;
            if let Some(bar) = file.bar.take() {
                clear(multi, &bar);
            }
        }
        self.update_total();
    }

    /// `input` failed: its bar goes and the total no longer counts it.
    fn fail(&mut self, multi: &MultiProgress, input: &str) {
        if let Some(file) = self.files.remove(input) {
            self.forget(multi, file);
        }
        self.update_total();
    }

    fn forget(&self, multi: &MultiProgress, file: UploadFile) {
        if let Some(bar) = &file.bar {
            clear(multi, bar);
        }
        if let Some(total) = &self.total {
            total.set_length(total.length().unwrap_or(0).saturating_sub(file.size));
        }
    }

    fn update_total(&self) {
        if let Some(total) = &self.total {
            total.set_position(self.files.values().map(|f| f.done).sum());
        }
    }

    /// Whether a file is still uploading.
    fn running(&self) -> bool {
        self.files.values().any(|f| f.bar.is_some())
    }
}

/// Live captions: a spinner saying what each tick stored.
struct LiveSpinner {
    spinner: ProgressBar,
    /// Segments stored since the start.
    stored: u64,
}

/// A spinner with the elapsed time and a message, at the bottom of `multi`.
fn spinner(multi: &MultiProgress) -> ProgressBar {
    let spinner = multi.add(ProgressBar::new_spinner());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner
}

impl LiveSpinner {
    fn new(multi: &MultiProgress) -> Self {
        LiveSpinner {
            spinner: spinner(multi),
            stored: 0,
        }
    }

    fn tick(&mut self, tick: u64, segments: u64, objects: u64) {
        self.stored += segments;
        self.spinner.set_message(format!(
            "tick {tick}: +{segments} segment(s), {objects} object(s) stored this tick, {} in all",
            self.stored
        ));
        self.spinner.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vidpipe::progress::Collected;

    fn hidden_bars() -> Bars {
        Bars::with_target(ProgressDrawTarget::hidden())
    }

    fn initialized(input: &str, bytes_total: u64) -> Event {
        Event::Initialized {
            input: input.into(),
            index: 1,
            total: 2,
            share: vidpipe::inputs::Share::whole(2),
            url: format!("s3://b/{input}"),
            parts_total: 4,
            parts_done: 0,
            bytes_total,
        }
    }

    fn uploaded_bytes(input: &str, bytes_done: u64) -> Event {
        Event::UploadProgress {
            input: input.into(),
            bytes_done,
            bytes_total: 1000,
            percent: bytes_done as f64 / 10.0,
        }
    }

    fn error(input: &str) -> Event {
        Event::Error {
            input: input.into(),
            message: "cannot read: permission denied".into(),
        }
    }

    fn ladder(input: &str) -> Event {
        Event::Ladder {
            input: input.into(),
            renditions: vec!["720p".into(), "audio".into()],
            weights: vec![0.9, 0.1],
        }
    }

    fn progress(input: &str, rendition: &str, percent: f64) -> Event {
        Event::Progress {
            input: input.into(),
            rendition: rendition.into(),
            percent,
        }
    }

    /// (position, finished) of `input`'s upload bar, if it has one.
    fn file_bar(bars: &Bars, input: &str) -> Option<(u64, bool)> {
        let state = bars.state.lock().expect("state");
        let file = state.uploads.files.get(input)?;
        file.bar.as_ref().map(|b| (b.position(), b.is_finished()))
    }

    /// (position, length, finished) of the upload total bar.
    fn total_bar(bars: &Bars) -> (u64, Option<u64>, bool) {
        let state = bars.state.lock().expect("state");
        let total = state.uploads.total.as_ref().expect("total bar");
        (total.position(), total.length(), total.is_finished())
    }

    /// (rendition positions by name, overall position) of `input`'s
    /// transcode bars, if it has them.
    fn transcode_bars(bars: &Bars, input: &str) -> Option<(HashMap<String, u64>, u64)> {
        let state = bars.state.lock().expect("state");
        let transcode = state.transcodes.get(input)?;
        let positions = transcode
            .renditions
            .iter()
            .map(|(name, (bar, _))| (name.clone(), bar.position()))
            .collect();
        assert!(!transcode.overall.is_finished());
        Some((positions, transcode.overall.position()))
    }

    #[test]
    fn an_upload_error_clears_only_that_files_bar_and_the_total_goes_on() {
        let bars = hidden_bars();
        bars.report(initialized("a.bin", 1000));
        bars.report(initialized("b.bin", 1000));
        bars.report(uploaded_bytes("a.bin", 500));
        bars.report(uploaded_bytes("b.bin", 200));
        assert_eq!(total_bar(&bars), (700, Some(2000), false));

        bars.report(error("a.bin"));
        assert_eq!(file_bar(&bars, "a.bin"), None);
        assert_eq!(file_bar(&bars, "b.bin"), Some((200, false)));
        assert_eq!(total_bar(&bars), (200, Some(1000), false));

        bars.report(uploaded_bytes("b.bin", 600));
        assert_eq!(file_bar(&bars, "b.bin"), Some((600, false)));
        assert_eq!(total_bar(&bars), (600, Some(1000), false));
    }

    #[test]
    fn an_uploaded_file_clears_its_bar_and_counts_as_done_in_the_total() {
        let bars = hidden_bars();
        bars.report(initialized("a.bin", 1000));
        bars.report(initialized("b.bin", 1000));
        bars.report(Event::Uploaded {
            input: "a.bin".into(),
            url: "s3://b/a.bin".into(),
            bytes: 1000,
        });
        assert_eq!(file_bar(&bars, "a.bin"), None);
        assert_eq!(file_bar(&bars, "b.bin"), Some((0, false)));
        assert_eq!(total_bar(&bars), (1000, Some(2000), false));
        bars.report(uploaded_bytes("b.bin", 300));
        assert_eq!(total_bar(&bars), (1300, Some(2000), false));
    }

    #[test]
    fn a_transcode_error_or_done_clears_only_that_inputs_bars() {
        let bars = hidden_bars();
        bars.report(ladder("a.mp4"));
        bars.report(ladder("b.mp4"));
        bars.report(ladder("c.mp4"));
        bars.report(progress("a.mp4", "720p", 50.0));
        bars.report(progress("b.mp4", "720p", 10.0));

        bars.report(error("a.mp4"));
        assert_eq!(transcode_bars(&bars, "a.mp4"), None);
        let (renditions, overall) = transcode_bars(&bars, "b.mp4").expect("b's bars");
        assert_eq!((renditions["720p"], overall), (100, 90));

        bars.report(Event::Done {
            input: "c.mp4".into(),
            master: "c/master.m3u8".into(),
            cpu: Default::default(),
        });
        assert_eq!(transcode_bars(&bars, "c.mp4"), None);

        bars.report(progress("b.mp4", "720p", 20.0));
        bars.report(progress("b.mp4", "audio", 100.0));
        let (renditions, overall) = transcode_bars(&bars, "b.mp4").expect("b's bars");
        assert_eq!((renditions["720p"], renditions["audio"]), (200, 1000));
        assert_eq!(overall, 280);
    }

    #[test]
    fn a_commentary_error_clears_only_its_stage_bars() {
        let bars = hidden_bars();
        let status = |input: &str, done| Event::Status {
            input: input.into(),
            stage: "chunks".into(),
            done,
            total: 10,
        };
        bars.report(status("a.mp4", 1));
        bars.report(status("b.mp4", 2));
        bars.report(error("a.mp4"));
        bars.report(status("b.mp4", 3));
        let state = bars.state.lock().expect("state");
        assert!(!state.stages.contains_key("a.mp4"));
        let b = &state.stages["b.mp4"].0["chunks"];
        assert_eq!((b.position(), b.is_finished()), (3, false));
    }

    #[test]
    fn an_error_leaves_the_live_captions_spinner_going() {
        let bars = hidden_bars();
        let tick = Event::Tick {
            tick: 1,
            segments: 2,
            objects: 3,
        };
        bars.report(tick.clone());
        bars.report(error("talk.de.srt"));
        bars.report(tick);
        let state = bars.state.lock().expect("state");
        let live = state.live.as_ref().expect("spinner");
        assert_eq!(live.stored, 4);
        assert!(!live.spinner.is_finished());
    }

    #[test]
    fn explicit_bars_draw_even_when_stderr_is_not_a_terminal() {
        assert!(!Bars::new().multi.is_hidden());
    }

    #[test]
    fn console_prints_errors_always_and_warnings_unless_quiet() {
        let warning = Event::Warning {
            input: "talk.srt".into(),
            message: "line 3: empty cue".into(),
        };
        let loud = Console::new(Box::new(Silent), false);
        let quiet = Console::new(Box::new(Silent), true);
        assert_eq!(
            loud.line(&warning).as_deref(),
            Some("warning: talk.srt: line 3: empty cue")
        );
        assert_eq!(quiet.line(&warning), None);
        for console in [&loud, &quiet] {
            assert_eq!(
                console.line(&error("a.bin")).as_deref(),
                Some("error: a.bin: cannot read: permission denied")
            );
            assert_eq!(console.line(&progress("a.mp4", "720p", 1.0)), None);
        }
    }

    /// Lets a test keep the collector it hands a [`Console`].
    struct Shared(Arc<Collected>);

    impl Reporter for Shared {
        fn report(&self, event: Event) {
            self.0.report(event);
        }
    }

    #[test]
    fn console_passes_every_event_on() {
        let collected = Arc::new(Collected::default());
        let console = Console::new(Box::new(Shared(collected.clone())), true);
        let events = vec![
            progress("a.mp4", "720p", 1.0),
            error("a.mp4"),
            Event::Warning {
                input: "a.mp4".into(),
                message: "short".into(),
            },
        ];
        for event in events.clone() {
            console.report(event);
        }
        assert_eq!(*collected.0.lock().expect("events"), events);
    }
}
