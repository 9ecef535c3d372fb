//! The demux thread's side of "decode once": every decoded frame goes to
//! the first rendition group (and from it along the group pipeline), by
//! reference.
//!
//! When a thumbnail is wanted, the first frames are held back until the
//! frame at the thumbnail time has been decoded, written and announced, so
//! the thumbnail exists before any encoding starts and costs no second
//! decode. Frames before a resume point and repeated timestamps are dropped
//! here, so workers see each output frame index once, in order.

use super::worker::{GroupWorker, Msg, Pictures};
use super::HlsError;
use crate::media::{ff, thumbnail, video::share_frame};
use crate::progress::{Event, Reporter};
use crate::storage::Destination;
use std::sync::mpsc::SyncSender;

/// Frames held back at most while waiting for the thumbnail frame (the
/// frame reached by then is used), bounding memory for high frame rates.
const MAX_HELD: usize = 64;

/// Where the thumbnail goes and which frame it is.
pub struct ThumbnailSlot<'a> {
    /// Output frame index of the thumbnail frame.
    pub frame: u64,
    /// Key of `thumbnail.jpg`.
    pub key: String,
    /// Destination to store it in.
    pub dest: &'a dyn Destination,
    /// Who hears `thumbnail_ready`.
    pub reporter: &'a dyn Reporter,
    /// Input name for the event.
    pub input: &'a str,
}

/// A group worker's channel, named by its first rendition.
pub type WorkerTx = (String, SyncSender<Msg<Pictures>>);

/// Where decoded frames go.
pub enum FirstGroup<'a> {
    /// The first group's thread.
    Thread(WorkerTx),
    /// The only group, run on the demux thread itself: on one core, a
    /// thread of its own would only take turns with the decoder.
    Inline(Box<GroupWorker<'a>>),
}

/// Sends decoded frames to the rendition workers.
pub struct FrameFanOut<'a> {
    video: Option<FirstGroup<'a>>,
    /// Frame timestamp of output frame 0.
    origin: i64,
    /// First frame this run encodes (the resume point).
    first: u64,
    /// Time base of frame timestamps (one tick per frame).
    time_base: ff::Rational,
    last: Option<u64>,
    thumbnail: Option<ThumbnailSlot<'a>>,
    held: Vec<ff::frame::Video>,
}

impl<'a> FrameFanOut<'a> {
    /// A fan-out to `video`; frames carry `origin + index` timestamps in
    /// `time_base`, and frames before index `first` are dropped.
    pub fn new(
        video: Option<FirstGroup<'a>>,
        origin: i64,
        first: u64,
        time_base: ff::Rational,
        thumbnail: Option<ThumbnailSlot<'a>>,
    ) -> Self {
        FrameFanOut {
            video,
            origin,
            first,
            time_base,
            last: None,
            thumbnail,
            held: Vec::new(),
        }
    }

    /// Takes one decoded frame.
    pub fn offer(&mut self, frame: ff::frame::Video) -> Result<(), HlsError> {
        let Some(pts) = frame.pts() else {
            return Ok(());
        };
        let index = pts - self.origin;
        if index < self.first as i64 || self.last.is_some_and(|l| index <= l as i64) {
            return Ok(());
        }
        self.last = Some(index as u64);
        match &self.thumbnail {
            Some(slot) => {
                let reached = index as u64 >= slot.frame || self.held.len() + 1 >= MAX_HELD;
                self.held.push(frame);
                if reached {
                    self.release()?;
                }
                Ok(())
            }
            None => self.send(&frame),
        }
    }

    /// At the end of the input: writes the thumbnail from the last frame if
    /// the thumbnail time was never reached, and sends what was held.
    pub fn flush(&mut self) -> Result<(), HlsError> {
        if self.thumbnail.is_some() && !self.held.is_empty() {
            self.release()?;
        }
        Ok(())
    }

    /// Tells the first group the input ended normally (finishing it, when
    /// it runs here).
    pub fn end(&mut self) -> Result<(), HlsError> {
        match self.video.take() {
            Some(FirstGroup::Thread((_, tx))) => {
                let _ = tx.send(Msg::End);
            }
            Some(FirstGroup::Inline(group)) => {
                group.end()?;
            }
            None => {}
        }
        Ok(())
    }

    /// Whether nothing more is needed from the input: no worker to feed and
    /// no thumbnail to wait for.
    pub fn satisfied(&self) -> bool {
        self.video.is_none() && self.thumbnail.is_none()
    }

    /// Index one past the last frame sent, if any.
    pub fn frames_end(&self) -> Option<u64> {
        self.last.map(|l| l + 1)
    }

    fn release(&mut self) -> Result<(), HlsError> {
        if let (Some(slot), Some(frame)) = (self.thumbnail.take(), self.held.last()) {
            let bytes = thumbnail::jpeg(frame, self.time_base)
                .map_err(|e| HlsError::Media(format!("cannot make the thumbnail: {e}"), e))?;
            slot.dest
                .put(&slot.key, &bytes)
                .map_err(|source| HlsError::Write {
                    path: slot.dest.describe(&slot.key),
                    source,
                })?;
            slot.reporter.report(Event::ThumbnailReady {
                input: slot.input.to_string(),
                path: slot.dest.describe(&slot.key),
            });
        }
        for frame in std::mem::take(&mut self.held) {
            self.send(&frame)?;
        }
        Ok(())
    }

    fn send(&mut self, frame: &ff::frame::Video) -> Result<(), HlsError> {
        let Some(video) = self.video.as_mut() else {
            return Ok(());
        };
        let shared = share_frame(frame).map_err(|e| HlsError::Internal(e.to_string()))?;
        match video {
            FirstGroup::Thread((rendition, tx)) => {
                tx.send(Msg::Item(vec![Some(shared)]))
                    .map_err(|_| HlsError::Worker {
                        rendition: rendition.clone(),
                        reason: "the worker stopped".into(),
                    })
            }
            FirstGroup::Inline(group) => group.frame(vec![Some(shared)]).map(drop),
        }
    }
}
