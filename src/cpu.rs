//! Where a transcode's CPU goes: per-stage CPU seconds for the `done`
//! event's `cpu` and the `-v` summary.
//!
//! Each thread reads its own CPU clock around the calls of a stage
//! ([`time`], nested calls counted once, to the innermost stage) and moves
//! its figures into the input's [`Ledger`] when it ends. Threads that libav
//! and x264 start for themselves (frame threads) are found by name: they
//! inherit the name of the thread that opened the decoder or encoder
//! ([`Helpers`]), and their CPU is added to that stage before the codec is
//! closed. What no stage accounts for (thread
//! start-up, channel hand-offs, the probe) is `other`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A part of the work whose CPU is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading packets from the input.
    Demux,
    /// Decoding video (and its frame threads).
    Decode,
    /// Rotation, frame-rate and pixel-format conversion, once per frame.
    Filter,
    /// The thumbnail and handing frames to the workers.
    Handoff,
    /// Scaling one rendition.
    Scale,
    /// Encoding one rendition (x264 and its threads, or audio decode,
    /// resample and AAC).
    Encode,
    /// Muxing one rendition's segments.
    Mux,
    /// Storing segments, playlists and the checkpoint.
    Store,
}

const STAGES: [Stage; 8] = [
    Stage::Demux,
    Stage::Decode,
    Stage::Filter,
    Stage::Handoff,
    Stage::Scale,
    Stage::Encode,
    Stage::Mux,
    Stage::Store,
];

impl Stage {
    /// The stage's key in the report.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Demux => "demux",
            Stage::Decode => "decode",
            Stage::Filter => "filter",
            Stage::Handoff => "handoff",
            Stage::Scale => "scale",
            Stage::Encode => "encode",
            Stage::Mux => "mux",
            Stage::Store => "store",
        }
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of the whole process.
pub fn process_cpu() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// What one thread has counted: CPU per part (`""` for the demux side,
/// else a rendition) and stage.
#[derive(Debug, Default)]
struct ThreadMeter {
    parts: Vec<(String, [Duration; STAGES.len()])>,
    /// CPU of the timed calls that have ended, so that an enclosing call
    /// counts only its own.
    inner: Duration,
}

impl ThreadMeter {
    fn add(&mut self, part: &str, stage: Stage, cpu: Duration) {
        let i = match self.parts.iter().position(|(p, _)| p == part) {
            Some(i) => i,
            None => {
                self.parts.push((part.to_string(), Default::default()));
                self.parts.len() - 1
            }
        };
        self.parts[i].1[stage as usize] += cpu;
    }
}

thread_local! {
    static METER: RefCell<ThreadMeter> = RefCell::default();
}

/// Runs `work`, counting the calling thread's CPU to `part`'s `stage`;
/// timed calls inside `work` count to their own stage instead.
pub fn time<T>(part: &str, stage: Stage, work: impl FnOnce() -> T) -> T {
    let start = thread_cpu();
    let inner_before = METER.with(|m| m.borrow().inner);
    let out = work();
    let spent = thread_cpu().saturating_sub(start);
    METER.with(|m| {
        let mut m = m.borrow_mut();
        let nested = m.inner.saturating_sub(inner_before);
        m.add(part, stage, spent.saturating_sub(nested));
        m.inner = inner_before + spent;
    });
    out
}

/// Counts `cpu` spent elsewhere (a codec's own threads) to `part`'s
/// `stage`.
pub fn add(part: &str, stage: Stage, cpu: Duration) {
    METER.with(|m| m.borrow_mut().add(part, stage, cpu));
}

/// Forgets what this thread counted so far (a thread that starts an
/// input's work).
pub fn reset() {
    METER.with(|m| *m.borrow_mut() = ThreadMeter::default());
}

/// The stages of one input, summed over its threads.
#[derive(Debug, Default)]
pub struct Ledger {
    parts: Mutex<BTreeMap<String, [Duration; STAGES.len()]>>,
}

impl Ledger {
    /// Moves what the calling thread counted into the ledger.
    pub fn collect(&self) {
        let taken = METER.with(|m| std::mem::take(&mut *m.borrow_mut()));
        if let Ok(mut parts) = self.parts.lock() {
            for (part, spent) in taken.parts {
                let entry = parts.entry(part).or_default();
                for (sum, add) in entry.iter_mut().zip(spent) {
                    *sum += add;
                }
            }
        }
    }

    /// Seconds per `stage` and `rendition.stage`, with the process's CPU
    /// over the same time as `total` and what no stage explains as
    /// `other`.
    pub fn report(&self, total: Duration) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let mut counted = Duration::ZERO;
        if let Ok(parts) = self.parts.lock() {
            for (part, spent) in parts.iter() {
                for (stage, spent) in STAGES.iter().zip(spent) {
                    if spent.is_zero() {
                        continue;
                    }
                    counted += *spent;
                    let key = if part.is_empty() {
                        stage.name().to_string()
                    } else {
                        format!("{part}.{}", stage.name())
                    };
                    out.insert(key, round(*spent));
                }
            }
        }
        out.insert("total".into(), round(total));
        out.insert("other".into(), round(total.saturating_sub(counted)));
        out
    }
}

fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// One line per part for the `-v` summary: `decode 13.2 s, ...`.
pub fn summary(report: &BTreeMap<String, f64>) -> String {
    let mut lines: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (key, secs) in report {
        let (part, stage) = key.rsplit_once('.').unwrap_or(("", key));
        lines
            .entry(part)
            .or_default()
            .push(format!("{stage} {secs:.2} s"));
    }
    lines
        .into_iter()
        .map(|(part, stages)| {
            let part = if part.is_empty() { "input" } else { part };
            format!("{part}: {}", stages.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The threads libav or x264 started while opening a codec on this
/// thread: they carry this thread's name.
#[derive(Debug, Default)]
pub struct Helpers(Vec<String>);

impl Helpers {
    /// Runs `open` and notes the threads with this thread's name that
    /// appeared meanwhile.
    pub fn around<T>(open: impl FnOnce() -> T) -> (T, Helpers) {
        let name = own_name();
        let before = tasks_named(name.as_deref());
        let out = open();
        let after = tasks_named(name.as_deref());
        let new = after.into_iter().filter(|t| !before.contains(t)).collect();
        (out, Helpers(new))
    }

    /// Their CPU so far (read it before the codec is closed: threads that
    /// ended are gone).
    pub fn cpu(&self) -> Duration {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let total: u64 = self
            .0
            .iter()
            .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
            .filter_map(|stat| {
                // Fields after the command name (which may hold spaces):
                // utime and stime are the 12th and 13th.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .sum();
        Duration::from_secs_f64(total as f64 / ticks)
    }
}

fn own_name() -> Option<String> {
    std::fs::read_to_string("/proc/thread-self/comm")
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn tasks_named(name: Option<&str>) -> Vec<String> {
    let (Some(name), Ok(dir)) = (name, std::fs::read_dir("/proc/self/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|tid| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = thread_cpu();
        while thread_cpu() - start < d {
            std::hint::black_box(0u64.wrapping_add(1));
        }
    }

    #[test]
    fn stages_add_up_per_part_nested_calls_count_once_and_the_rest_is_other() {
        let ledger = Ledger::default();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                time("720p", Stage::Encode, || {
                    spin(Duration::from_millis(20));
                    time("720p", Stage::Mux, || spin(Duration::from_millis(20)));
                });
                ledger.collect();
            });
        });
        reset();
        add("", Stage::Decode, Duration::from_millis(500));
        ledger.collect();
        let report = ledger.report(Duration::from_secs(1));
        let (encode, mux) = (report["720p.encode"], report["720p.mux"]);
        assert!((0.02..0.03).contains(&encode), "{report:?}");
        assert!((0.02..0.03).contains(&mux), "{report:?}");
        assert_eq!(report["decode"], 0.5);
        assert_eq!(report["total"], 1.0);
        assert!((report["other"] - (0.5 - encode - mux)).abs() < 0.002);
        let line = summary(&report);
        assert!(line.contains("720p: encode"), "{line}");
        assert!(line.contains("input: decode 0.50 s"), "{line}");
    }

    #[test]
    fn helper_threads_are_the_ones_started_by_the_opener() {
        let (spun, spun_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let (handle, helpers) = Helpers::around(|| {
            std::thread::spawn(move || {
                spin(Duration::from_millis(60));
                let _ = spun.send(());
                let _ = stop_rx.recv();
            })
        });
        assert_eq!(helpers.0.len(), 1);
        let _ = spun_rx.recv();
        assert!(
            helpers.cpu() >= Duration::from_millis(30),
            "{:?}",
            helpers.cpu()
        );
        let _ = stop.send(());
        handle.join().ok();
        // Once the helper has ended, its CPU can no longer be read: callers
        // read it before closing the codec.
        assert_eq!(helpers.cpu(), Duration::ZERO);
        let (_, none) = Helpers::around(|| ());
        assert!(none.0.is_empty());
    }
}
