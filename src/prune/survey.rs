//! The survey: one walk that keeps what classifying needs, the playlists
//! read, and [`Survey::decide`], the classification of one file.

use super::playlist::{Numbered, Playlist};
use super::tree::{Entry, Tree};
use super::{age, parent, state_root, PruneSettings, Reason};
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The joined file of a finished commentary.
const FINAL_OUTPUT: &str = "commentary.mp4";

/// A decision about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Keep(Reason),
    Delete(Reason),
}

/// A media playlist's sliding window: which numbered files left it, and
/// when.
#[derive(Debug, Clone)]
struct Window {
    /// The listed segments, in order.
    listed: Vec<String>,
    /// The first listed segment's number.
    first: u64,
    /// Seconds a segment stays after leaving: RFC 8216 §6.2.2's segment
    /// plus playlist duration, the segment's own duration unknown:
    /// target duration × (listed segments + 1).
    grace: Duration,
}

/// Where the references of one numbered series are kept compactly: the
/// numbers listed by playlists, as ranges.
type SeriesKey = (String, String, usize);

/// What the survey found: enough to decide any file.
#[derive(Debug, Default)]
pub struct Survey {
    /// Output directories (`""` is the top), with the newest time of
    /// anything in them.
    roots: HashMap<String, SystemTime>,
    /// Outputs next to a playlist that could not be read.
    unsure: HashSet<String>,
    /// Finished outputs: a master, every playlist ended, or a joined
    /// commentary. Their small state records stay, so a re-run of the job
    /// costs nothing.
    finished: HashSet<String>,
    /// Directories holding a joined commentary, whose `chunks/` are
    /// published with it (no playlist lists them).
    joined: HashSet<String>,
    /// Playlists by key.
    pub(super) playlists: HashMap<String, Facts>,
    /// Keys listed by playlists outside numbered series; `true` when a
    /// live playlist lists them.
    listed: HashMap<String, bool>,
    /// Numbered series listed by playlists: ranges of numbers, and whether
    /// live.
    series: HashMap<SeriesKey, Vec<(u64, u64, bool)>>,
    /// Sliding windows by series.
    windows: HashMap<SeriesKey, Window>,
    /// Modification times of listed segments looked up so far.
    times: Mutex<HashMap<String, Option<SystemTime>>>,
}

/// What the survey keeps of a playlist.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    master: bool,
    bytes: u64,
    modified: SystemTime,
}

/// What the first walk keeps.
#[derive(Default)]
struct Walked {
    playlists: Vec<Entry>,
    state_dirs: HashMap<String, SystemTime>,
    newest_in_dir: HashMap<String, SystemTime>,
    /// Directories holding a final, joined output (`commentary.mp4`).
    final_outputs: HashSet<String>,
}

impl Survey {
    /// Walks `tree` once and reads its playlists; what cannot be read goes
    /// to `problem` (where, why).
    pub(super) fn take(
        tree: &dyn Tree,
        settings: &PruneSettings,
        outside_state: &[Entry],
        problem: &dyn Fn(&str, &str),
    ) -> io::Result<Survey> {
        let mut walked = Walked::default();
        let note = |e: &Entry, walked: &mut Walked| {
            newest(&mut walked.newest_in_dir, parent(&e.key), e.modified);
            if let Some(root) = state_root(&e.key) {
                newest(&mut walked.state_dirs, root, e.modified);
            }
        };
        tree.walk(
            &mut |e| {
                note(&e, &mut walked);
                if is_playlist(&e.key) {
                    walked.playlists.push(e);
                } else if e.key.rsplit('/').next() == Some(FINAL_OUTPUT) {
                    walked.final_outputs.insert(parent(&e.key).to_string());
                }
                Ok(())
            },
            &mut |at, why| problem(&at, &why),
        )?;
        for e in outside_state {
            note(e, &mut walked);
        }
        let mut survey = Survey::default();
        let mut parsed = Vec::new();
        for entry in &walked.playlists {
            let read = tree
                .read(&entry.key)
                .map_err(|e| crate::inputs::describe_io(&e))
                .and_then(|bytes| {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| "not a playlist: it is not UTF-8 text".to_string())?;
                    Playlist::parse(&entry.key, &text)
                });
            match read {
                Ok(p) => parsed.push((entry, p)),
                // Deleted meanwhile (an expiring prune, a re-run): nothing
                // to decide about it.
                Err(why) if tree.modified(&entry.key).ok() == Some(None) => {
                    tracing::debug!("{}: gone while reading it ({why})", entry.key);
                }
                Err(why) => {
                    problem(
                        &tree.describe(&entry.key),
                        &format!("{why}; the files of its output are kept"),
                    );
                    survey.unsure.insert(parent(&entry.key).to_string());
                }
            }
        }
        survey.find_roots(&walked, &parsed);
        survey.find_finished(&walked, &parsed);
        for (entry, p) in parsed {
            let live = !p.ended && age(settings.now, entry.modified) < settings.older_than;
            let facts = Facts {
                master: p.master,
                bytes: entry.bytes,
                modified: entry.modified,
            };
            survey.playlists.insert(entry.key.clone(), facts);
            survey.add_references(&p, live);
            if !p.master {
                survey.add_window(&p);
            }
        }
        // An unreadable playlist protects the output it is in.
        survey.unsure = survey
            .unsure
            .iter()
            .map(|dir| survey.root_of(dir).unwrap_or(dir).to_string())
            .collect();
        Ok(survey)
    }

    /// Outputs: directories of masters and of `.vidpipe` state, then
    /// directories of media playlists no master lists and that are not
    /// inside one of those; each with the newest time in it.
    fn find_roots(&mut self, walked: &Walked, parsed: &[(&Entry, Playlist)]) {
        let mut by_master = HashSet::new();
        for (entry, p) in parsed.iter().filter(|(_, p)| p.master) {
            self.roots
                .insert(parent(&entry.key).to_string(), SystemTime::UNIX_EPOCH);
            by_master.extend(p.references.iter().cloned());
        }
        for dir in walked.state_dirs.keys() {
            self.roots.insert(dir.clone(), SystemTime::UNIX_EPOCH);
        }
        let standalone: Vec<String> = parsed
            .iter()
            .filter(|(e, p)| !p.master && !by_master.contains(&e.key))
            .map(|(e, _)| parent(&e.key).to_string())
            .filter(|dir| self.root_of(dir).is_none())
            .collect();
        for dir in standalone {
            self.roots.insert(dir, SystemTime::UNIX_EPOCH);
        }
        for (dir, time) in &walked.newest_in_dir {
            if let Some(root) = self.root_of(dir).map(str::to_string) {
                newest(&mut self.roots, &root, *time);
            }
        }
    }

    fn find_finished(&mut self, walked: &Walked, parsed: &[(&Entry, Playlist)]) {
        let mut open = HashSet::new();
        for (entry, p) in parsed {
            let Some(root) = self.root_of(parent(&entry.key)).map(str::to_string) else {
                continue;
            };
            if p.master || p.ended {
                self.finished.insert(root);
            } else {
                open.insert(root);
            }
        }
        for dir in &walked.final_outputs {
            self.joined.insert(dir.clone());
            if let Some(root) = self.root_of(dir).map(str::to_string) {
                open.remove(&root);
                self.finished.insert(root);
            }
        }
        // A master is written last; otherwise one open playlist means the
        // output is not finished.
        let masters: HashSet<String> = parsed
            .iter()
            .filter(|(_, p)| p.master)
            .filter_map(|(e, _)| self.root_of(parent(&e.key)).map(str::to_string))
            .collect();
        self.finished
            .retain(|root| masters.contains(root) || !open.contains(root));
    }

    /// The nearest output directory at or above `dir`.
    fn root_of<'d>(&self, dir: &'d str) -> Option<&'d str> {
        let mut current = dir;
        loop {
            if self.roots.contains_key(current) {
                return Some(current);
            }
            if current.is_empty() {
                return None;
            }
            current = parent(current);
        }
    }

    fn add_references(&mut self, p: &Playlist, live: bool) {
        let mut numbered: Option<(SeriesKey, u64, u64)> = None;
        let series_of_segments = consecutive(&p.segments);
        if let Some((first, last)) = &series_of_segments {
            numbered = Some((series_key(first), first.number, last.number));
        }
        for key in &p.references {
            let in_series = numbered.as_ref().is_some_and(|(s, lo, hi)| {
                Numbered::split(key)
                    .is_some_and(|n| series_key(&n) == *s && (*lo..=*hi).contains(&n.number))
            });
            if !in_series {
                let entry = self.listed.entry(key.clone()).or_insert(false);
                *entry |= live;
            }
        }
        if let Some((series, lo, hi)) = numbered {
            self.series.entry(series).or_default().push((lo, hi, live));
        }
    }

    fn add_window(&mut self, p: &Playlist) {
        let Some((first, _)) = consecutive(&p.segments) else {
            return;
        };
        let window = Window {
            listed: p.segments.clone(),
            first: first.number,
            grace: Duration::from_secs_f64(p.target_duration * (p.segments.len() as f64 + 1.0)),
        };
        self.windows.insert(series_key(&first), window);
    }

    /// Whether a playlist lists `key`: `Some(true)` a live one.
    fn listing(&self, key: &str) -> Option<bool> {
        if let Some(live) = self.listed.get(key) {
            return Some(*live);
        }
        let n = Numbered::split(key)?;
        let ranges = self.series.get(&series_key(&n))?;
        let matching = ranges
            .iter()
            .filter(|(lo, hi, _)| (*lo..=*hi).contains(&n.number));
        matching.fold(None, |acc, (_, _, live)| Some(acc.unwrap_or(false) | live))
    }

    /// The sliding window `key` left, and when it left it at the latest.
    ///
    /// Segment N left when the playlist first listed segment N + W (W
    /// listed at once); that segment was stored just before. When it is no
    /// longer listed either, N left before the first listed one was
    /// stored. `None` when `key` is not a segment that left a window, or
    /// the time cannot be known (then it is kept).
    fn left_window(&self, tree: &dyn Tree, key: &str) -> Option<(&Window, Option<SystemTime>)> {
        let n = Numbered::split(key)?;
        let window = self.windows.get(&series_key(&n))?;
        if n.number >= window.first {
            return None;
        }
        let width = window.listed.len() as u64;
        let index = (n.number + width).max(window.first) - window.first;
        let witness = window.listed.get(usize::try_from(index).ok()?)?;
        let mut times = self.times.lock().ok()?;
        let time = *times
            .entry(witness.clone())
            .or_insert_with(|| tree.modified(witness).ok().flatten());
        Some((window, time))
    }

    /// Whether the output `root` has changed within the limit.
    fn in_progress(&self, root: &str, settings: &PruneSettings) -> bool {
        self.roots
            .get(root)
            .is_some_and(|t| age(settings.now, *t) < settings.older_than)
    }

    /// A chunk of a joined commentary: `<dir>/chunks/chunk_NNNN.mp4` beside
    /// `<dir>/commentary.mp4`.
    fn is_joined_chunk(&self, key: &str) -> bool {
        let chunks = parent(key);
        let name = key.rsplit('/').next().unwrap_or(key);
        name.starts_with("chunk_")
            && name.ends_with(".mp4")
            && chunks.rsplit('/').next() == Some("chunks")
            && self.joined.contains(parent(chunks))
    }

    /// Whether `--expire` removes the whole output `root`.
    fn expires(&self, root: &str, settings: &PruneSettings) -> bool {
        settings.expire && !self.unsure.contains(root) && !self.in_progress(root, settings)
    }

    /// What to do with `entry` (see the module docs and the README).
    pub fn decide(&self, tree: &dyn Tree, entry: &Entry, settings: &PruneSettings) -> Decision {
        let old = age(settings.now, entry.modified) >= settings.older_than;
        let gate = |reason| {
            if old {
                Decision::Delete(reason)
            } else {
                Decision::Keep(Reason::Young)
            }
        };
        let Some(root) = self.root_of(parent(&entry.key)) else {
            return if settings.expire {
                gate(Reason::Expired)
            } else {
                Decision::Keep(Reason::Unrecognised)
            };
        };
        if self.unsure.contains(root) {
            return Decision::Keep(Reason::Unsure);
        }
        if self.expires(root, settings) {
            return gate(Reason::Expired);
        }
        if self.playlists.contains_key(&entry.key) {
            return Decision::Keep(Reason::Published);
        }
        match self.listing(&entry.key) {
            Some(true) => return Decision::Keep(Reason::Live),
            Some(false) => return Decision::Keep(Reason::Published),
            None => {}
        }
        if let Some((window, left)) = self.left_window(tree, &entry.key) {
            let over = left
                .and_then(|t| t.checked_add(window.grace))
                .is_some_and(|until| settings.now >= until);
            return if over {
                gate(Reason::LeftWindow)
            } else {
                Decision::Keep(Reason::Grace)
            };
        }
        if is_temp(&entry.key) {
            return gate(Reason::Temp);
        }
        if self.in_progress(root, settings) {
            return Decision::Keep(Reason::InProgress);
        }
        if state_root(&entry.key).is_some() {
            // A finished job's record (JSON) stays, its scratch goes.
            if self.finished.contains(root) && entry.key.ends_with(".json") {
                return Decision::Keep(Reason::Published);
            }
            return gate(Reason::State);
        }
        if self.is_joined_chunk(&entry.key) {
            return Decision::Keep(Reason::Published);
        }
        if is_segment(&entry.key) {
            return gate(Reason::Unreferenced);
        }
        Decision::Keep(Reason::Published)
    }

    /// The playlists `--expire` removes first: masters, then media
    /// playlists.
    pub(super) fn expiring_playlists(&self, settings: &PruneSettings) -> [Vec<(String, u64)>; 2] {
        let mut tiers = [Vec::new(), Vec::new()];
        for (key, facts) in &self.playlists {
            let root = self.root_of(parent(key)).unwrap_or("");
            let old = age(settings.now, facts.modified) >= settings.older_than;
            if old && self.expires(root, settings) {
                tiers[usize::from(!facts.master)].push((key.clone(), facts.bytes));
            }
        }
        tiers.iter_mut().for_each(|t| t.sort());
        tiers
    }
}

fn newest(map: &mut HashMap<String, SystemTime>, key: &str, time: SystemTime) {
    match map.get_mut(key) {
        Some(t) => *t = (*t).max(time),
        None => {
            map.insert(key.to_string(), time);
        }
    }
}

fn is_playlist(key: &str) -> bool {
    key.ends_with(".m3u8") && state_root(key).is_none()
}

fn is_temp(key: &str) -> bool {
    key.ends_with(crate::fsutil::PARTIAL_SUFFIX)
}

/// Media segments, init segments and commentary chunks: what jobs write
/// in numbers and playlists list.
fn is_segment(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    matches!(extension, "ts" | "m4s" | "vtt" | "webvtt" | "aac" | "m4a")
        || (extension == "mp4" && (name.starts_with("init") || name.starts_with("chunk_")))
}

fn series_key(n: &Numbered<'_>) -> SeriesKey {
    (n.head.to_string(), n.tail.to_string(), n.digits)
}

/// The first and last of `segments` when they are one numbered series
/// counting up by one, as sliding live playlists are.
fn consecutive(segments: &[String]) -> Option<(Numbered<'_>, Numbered<'_>)> {
    let first = Numbered::split(segments.first()?)?;
    let mut last = first.clone();
    for (i, key) in segments.iter().enumerate().skip(1) {
        let n = Numbered::split(key)?;
        if !first.same_series(&n) || n.number != first.number + i as u64 {
            return None;
        }
        last = n;
    }
    Some((first, last))
}
