//! Live captions: follow growing transcripts and publish only what became
//! complete.
//!
//! Every tick each language's transcript is read again (up to its last
//! complete block). A segment is complete once a cue starts at or after its
//! end: cues arrive in time order, so nothing can be added to it any more.
//! New complete segments are stored first, then the playlist that lists
//! them (a sliding window of the last `window` segments, the media sequence
//! counting the segments dropped), and the state file records both after
//! each step, atomically, so a restarted run goes on from there without
//! storing anything twice.
//!
//! The stream ends with `--finish`, or when every transcript has an end
//! marker beside it (`FILE.end`, e.g. `touch talk.srt.end`): the rest is
//! published, the last segment cut at the end of the last cue (or the
//! duration given), and ENDLIST appended. A language that fails (bad file,
//! failed upload) is reported and retried on later ticks, backing off, while
//! the others go on.

use super::parse::Completeness;
use super::playlist::Kind;
use super::{write_playlist, write_segments, CaptionSettings, CaptionsError, Track};
use crate::progress::{Event, Reporter};
use crate::state::{StateError, StateFile, StatePlace, StoredState};
use crate::storage::Destination;
use crate::CancelFlag;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How a live run behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// Time between ticks.
    pub interval: Duration,
    /// Segments kept in each playlist.
    pub window: u64,
    /// Publish everything now, end the playlists and stop.
    pub finish: bool,
    /// Where the state file lives on this machine; `None` keeps it beside
    /// the output (`.vidpipe/captions-live.json` in the destination), so a
    /// stream restarted on another machine goes on where it was.
    pub state_path: Option<PathBuf>,
}

/// How a live run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOutcome {
    /// Ticks run.
    pub ticks: u64,
    /// Segments per language when the playlists were ended.
    pub segments: u64,
    /// Languages whose final publication failed.
    pub failed: Vec<String>,
}

const STATE_VERSION: u32 = 1;

/// The state file: what has been stored, per language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    version: u32,
    segment_ms: u64,
    mpegts: u64,
    /// The playlists carry ENDLIST.
    ended: bool,
    languages: BTreeMap<String, TrackState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct TrackState {
    /// Segments stored: 0..published.
    published: u64,
    /// Segments the stored playlist lists up to.
    listed: u64,
}

impl State {
    /// The state of a previous run, or a fresh one; a damaged file is set
    /// aside and reported as a warning about `output` (see
    /// [`crate::state`]), a state made with other settings is refused.
    fn load(
        place: &StatePlace<'_, State>,
        settings: &CaptionSettings,
        reporter: &dyn Reporter,
        output: &str,
    ) -> Result<Self, CaptionsError> {
        let fresh = State {
            version: STATE_VERSION,
            segment_ms: settings.layout.segment_ms,
            mpegts: settings.layout.mpegts,
            ended: false,
            languages: BTreeMap::new(),
        };
        let loaded = place.load().map_err(state_error)?;
        let Some(state) = loaded.reported(reporter, output) else {
            return Ok(fresh);
        };
        if state.version != STATE_VERSION
            || state.segment_ms != fresh.segment_ms
            || state.mpegts != fresh.mpegts
        {
            return Err(CaptionsError::State {
                path: place.describe(),
                reason: format!(
                    "made by a run with other settings (segment duration {} ms, MPEGTS {}); use the same settings, or a new destination",
                    state.segment_ms, state.mpegts
                ),
            });
        }
        Ok(state)
    }

    fn save(&self, place: &StatePlace<'_, State>) -> Result<(), CaptionsError> {
        place.save(self).map_err(state_error)
    }
}

fn state_error(e: StateError) -> CaptionsError {
    CaptionsError::State {
        path: e.path().display().to_string(),
        reason: e.reason(),
    }
}

/// Name of the live state beside an output.
pub const BESIDE_OUTPUT: &str = ".vidpipe/captions-live.json";

/// Where a live run's state is kept (see [`LiveSettings::state_path`]).
pub fn state_place<'a>(dest: &'a dyn Destination, live: &LiveSettings) -> StatePlace<'a, State> {
    match &live.state_path {
        Some(path) => StatePlace::File(StateFile::new(path)),
        None => StatePlace::Stored(StoredState::new(dest, BESIDE_OUTPUT)),
    }
}

/// A track's transcript end marker: `FILE.end`.
pub fn end_marker(track: &Track) -> PathBuf {
    end_marker_of(&track.path)
}

/// The end marker of the transcript at `path`: `FILE.end` beside it (the
/// one place that names it, for the producers that leave it too).
pub fn end_marker_of(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".end");
    PathBuf::from(name)
}

/// Retry bookkeeping of a failing language.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_tick: u64,
}

impl Backoff {
    /// After the n-th failure in a row, skip 2^(n-1) - 1 ticks (at most 31).
    fn failed(&mut self, tick: u64) {
        self.failures += 1;
        self.next_tick = tick + (1u64 << (self.failures - 1).min(5));
    }
}

/// One live run: ticks until the stream ends or the user stops it.
pub struct Follower<'a> {
    tracks: &'a [Track],
    dest: &'a dyn Destination,
    settings: &'a CaptionSettings,
    live: &'a LiveSettings,
    reporter: &'a dyn Reporter,
    place: StatePlace<'a, State>,
    state: State,
    backoff: BTreeMap<String, Backoff>,
    seen: BTreeMap<String, HashSet<super::parse::Problem>>,
    /// Segments and objects stored in the current tick.
    stored: (u64, u64),
}

impl<'a> Follower<'a> {
    /// Loads the state (or starts fresh).
    pub fn new(
        tracks: &'a [Track],
        dest: &'a dyn Destination,
        settings: &'a CaptionSettings,
        live: &'a LiveSettings,
        reporter: &'a dyn Reporter,
    ) -> Result<Self, CaptionsError> {
        let place = state_place(dest, live);
        let state = State::load(&place, settings, reporter, &dest.describe(""))?;
        Ok(Follower {
            tracks,
            dest,
            settings,
            live,
            reporter,
            place,
            state,
            backoff: BTreeMap::new(),
            seen: BTreeMap::new(),
            stored: (0, 0),
        })
    }

    /// Ticks every `interval` until the stream ends (Ok) or `cancel` is set
    /// (Err(Interrupted)), the state saved either way.
    pub fn run(mut self, cancel: &CancelFlag) -> Result<LiveOutcome, CaptionsError> {
        let mut tick = 0u64;
        loop {
            if cancel.load(Ordering::SeqCst) {
                return Err(CaptionsError::Interrupted);
            }
            tick += 1;
            if let Some(outcome) = self.tick(tick)? {
                return Ok(outcome);
            }
            let until = Instant::now() + self.live.interval;
            while Instant::now() < until {
                if cancel.load(Ordering::SeqCst) {
                    return Err(CaptionsError::Interrupted);
                }
                std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
            }
        }
    }

    /// One tick; `Some` when the stream has ended.
    pub fn tick(&mut self, tick: u64) -> Result<Option<LiveOutcome>, CaptionsError> {
        if self.state.ended {
            tracing::info!("the playlists already carry ENDLIST; nothing to do");
            return Ok(Some(LiveOutcome {
                ticks: tick,
                segments: self
                    .state
                    .languages
                    .values()
                    .map(|t| t.published)
                    .max()
                    .unwrap_or(0),
                failed: Vec::new(),
            }));
        }
        let finishing = self.live.finish || self.tracks.iter().all(|t| end_marker(t).exists());
        self.stored = (0, 0);
        let outcome = if finishing {
            Some(self.finish(tick)?)
        } else {
            for track in self.tracks {
                let backoff = self.backoff.entry(track.language.clone()).or_default();
                if backoff.next_tick > tick {
                    continue;
                }
                match self.advance(track) {
                    Ok(()) => {
                        self.backoff.remove(&track.language);
                    }
                    Err(e @ CaptionsError::State { .. }) => return Err(e),
                    Err(e) => self.failed(track, tick, &e),
                }
            }
            // Saved every tick, changed or not: its time tells `prune`
            // that this stream is still running.
            self.state.save(&self.place)?;
            None
        };
        let (segments, objects) = self.stored;
        self.reporter.report(Event::Tick {
            tick,
            segments,
            objects,
        });
        Ok(outcome)
    }

    fn failed(&mut self, track: &Track, tick: u64, e: &CaptionsError) {
        let backoff = self.backoff.entry(track.language.clone()).or_default();
        backoff.failed(tick);
        let retry = backoff.next_tick - tick;
        self.reporter.report(Event::Error {
            input: track.file(),
            message: format!("{e} (retrying in {retry} tick(s))"),
        });
    }

    /// Publishes a track's newly complete segments, then its playlist.
    fn advance(&mut self, track: &Track) -> Result<(), CaptionsError> {
        let ended = end_marker(track).exists();
        let completeness = if ended {
            Completeness::Complete
        } else {
            Completeness::Growing
        };
        let seen = self.seen.entry(track.language.clone()).or_default();
        let transcript = track.read(completeness, self.reporter, seen)?;
        let layout = &self.settings.layout;
        let closed_at = if ended {
            transcript.end()
        } else {
            transcript.latest_start()
        };
        let complete = layout.closed_before(closed_at);
        self.publish(
            track,
            &transcript,
            complete,
            complete * layout.segment_ms,
            Kind::Live { ended: false },
        )
    }

    /// Stores segments up to `complete` and the playlist when it changed.
    fn publish(
        &mut self,
        track: &Track,
        transcript: &super::parse::Transcript,
        complete: u64,
        total_ms: u64,
        kind: Kind,
    ) -> Result<(), CaptionsError> {
        let entry = self
            .state
            .languages
            .entry(track.language.clone())
            .or_default();
        let start = entry.published;
        if complete > start {
            write_segments(
                track,
                transcript,
                start..complete,
                total_ms,
                self.dest,
                self.settings,
                self.reporter,
            )?;
            self.stored.0 += complete - start;
            self.stored.1 += complete - start;
            entry.published = complete;
            self.state.save(&self.place)?;
        }
        let entry = self
            .state
            .languages
            .entry(track.language.clone())
            .or_default();
        let published = entry.published;
        let ending = kind == Kind::Live { ended: true };
        if published > 0 && (entry.listed != published || ending) {
            let first = published.saturating_sub(self.live.window);
            write_playlist(
                track,
                first..published,
                total_ms,
                kind,
                self.dest,
                self.settings,
                self.reporter,
            )?;
            self.stored.1 += 1;
            entry.listed = published;
            self.state.save(&self.place)?;
        }
        Ok(())
    }

    /// The end of the stream: every track published to the end of the
    /// latest cue of any language, playlists ended.
    fn finish(&mut self, tick: u64) -> Result<LiveOutcome, CaptionsError> {
        let mut parsed = Vec::new();
        let mut failed = Vec::new();
        for track in self.tracks {
            let seen = self.seen.entry(track.language.clone()).or_default();
            match track.read(Completeness::Complete, self.reporter, seen) {
                Ok(t) => parsed.push((track, t)),
                Err(e) => {
                    self.failed(track, tick, &e);
                    failed.push(track.language.clone());
                }
            }
        }
        let layout = self.settings.layout;
        let published_ms = self
            .state
            .languages
            .values()
            .map(|t| t.published)
            .max()
            .unwrap_or(0)
            * layout.segment_ms;
        let total_ms = parsed
            .iter()
            .map(|(_, t)| t.end())
            .max()
            .unwrap_or(0)
            .max(self.settings.duration_ms)
            .max(published_ms);
        let count = layout.count(total_ms);
        for (track, transcript) in parsed {
            if let Err(e) = self.publish(
                track,
                &transcript,
                count,
                total_ms,
                Kind::Live { ended: true },
            ) {
                self.failed(track, tick, &e);
                failed.push(track.language.clone());
            }
        }
        if failed.is_empty() {
            self.state.ended = true;
            self.state.save(&self.place)?;
        }
        Ok(LiveOutcome {
            ticks: tick,
            segments: count,
            failed,
        })
    }
}
