//! The deleting side: batches of removals with a few in flight, the
//! counts of the summary, and the events.

use super::survey::{Decision, Survey};
use super::tree::{Entry, Removal, Tree};
use super::{PruneSettings, Reason, Summary};
use crate::progress::{Event, Reporter};
use std::io;
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;

/// The deleting side: batches, counts and reports.
pub(super) struct Sweep<'a> {
    pub tree: &'a dyn Tree,
    pub settings: &'a PruneSettings,
    pub reporter: &'a dyn Reporter,
    pub summary: Mutex<Summary>,
}

/// Removal batches in flight at once.
const IN_FLIGHT: usize = 4;

impl Sweep<'_> {
    pub fn problem(&self, at: &str, why: &str) {
        if let Ok(mut s) = self.summary.lock() {
            s.failed += 1;
        }
        self.reporter.report(Event::Error {
            input: at.to_string(),
            message: why.to_string(),
        });
    }

    fn kept(&self, entry: &Entry, reason: Reason) {
        if let Ok(mut s) = self.summary.lock() {
            s.kept.entry(reason).or_default().add(entry.bytes);
        }
        if self.settings.dry_run {
            self.reporter.report(Event::Kept {
                path: self.tree.describe(&entry.key),
                bytes: entry.bytes,
                reason: reason.label(),
            });
        }
    }

    fn deleted(&self, key: &str, bytes: u64, reason: Reason) {
        if let Ok(mut s) = self.summary.lock() {
            s.deleted.entry(reason).or_default().add(bytes);
        }
        self.reporter.report(Event::Deleted {
            path: self.tree.describe(key),
            bytes,
            reason: reason.label(),
            dry_run: self.settings.dry_run,
        });
    }

    /// Deletes one batch and accounts for each key.
    fn remove(&self, batch: &[(String, u64, Reason)]) {
        if self.settings.dry_run {
            for (key, bytes, reason) in batch {
                self.deleted(key, *bytes, *reason);
            }
            return;
        }
        let keys: Vec<String> = batch.iter().map(|(k, _, _)| k.clone()).collect();
        match self.tree.remove(&keys) {
            Ok(results) => {
                for ((key, bytes, reason), result) in batch.iter().zip(results) {
                    match result {
                        Removal::Removed => self.deleted(key, *bytes, *reason),
                        Removal::AlreadyGone => {}
                        Removal::Failed(why) => {
                            self.problem(&self.tree.describe(key), &format!("cannot delete: {why}"))
                        }
                    }
                }
                self.tree.tidy(&keys);
            }
            Err(e) => {
                let why = crate::inputs::describe_io(&e);
                for (key, _, _) in batch {
                    self.problem(&self.tree.describe(key), &format!("cannot delete: {why}"));
                }
            }
        }
    }

    /// Deletes the playlists of expiring outputs, masters first.
    pub fn expire_playlists(&self, survey: &Survey) {
        for tier in survey.expiring_playlists(self.settings) {
            for chunk in tier.chunks(self.tree.batch().max(1)) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|(key, bytes)| (key.clone(), *bytes, Reason::Expired))
                    .collect();
                self.remove(&batch);
            }
        }
    }

    /// The second walk: decides every file, deleting in batches with a few
    /// batches in flight.
    pub fn sweep(&self, survey: &Survey) -> io::Result<()> {
        let batch_size = self.tree.batch().max(1);
        let (tx, rx) = sync_channel::<Vec<(String, u64, Reason)>>(IN_FLIGHT);
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| {
            for _ in 0..IN_FLIGHT {
                scope.spawn(|| loop {
                    let next = rx.lock().ok().and_then(|r| r.recv().ok());
                    match next {
                        Some(batch) => self.remove(&batch),
                        None => return,
                    }
                });
            }
            let mut batch = Vec::with_capacity(batch_size);
            let walked = self.tree.walk(
                &mut |entry| {
                    let decision = survey.decide(self.tree, &entry, self.settings);
                    if decision == Decision::Delete(Reason::Expired)
                        && survey.playlists.contains_key(&entry.key)
                    {
                        // Deleted before the sweep: already counted.
                        return Ok(());
                    }
                    match decision {
                        Decision::Keep(reason) => self.kept(&entry, reason),
                        Decision::Delete(reason) => {
                            batch.push((entry.key, entry.bytes, reason));
                            if batch.len() >= batch_size {
                                let full =
                                    std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                                tx.send(full).map_err(io::Error::other)?;
                            }
                        }
                    }
                    Ok(())
                },
                &mut |at, why| self.problem(&at, &why),
            );
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            drop(tx);
            walked
        })
    }
}
