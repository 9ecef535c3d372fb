//! The classification on real local trees with set modification times.

use super::tree::{LocalTree, Removal};
use super::*;
use crate::progress::{Collected, Event};
use std::path::Path;
use std::sync::Mutex as StdMutex;

/// The clock of these tests: T0 plus seconds.
fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

/// Writes `key` under `root` with `text`, modified at `at(seconds)`.
fn file(root: &Path, key: &str, text: &str, seconds: u64) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(at(seconds)).expect("set mtime");
}

fn settings(now: u64, older_than: u64) -> PruneSettings {
    PruneSettings {
        older_than: Duration::from_secs(older_than),
        dry_run: false,
        expire: false,
        now: at(now),
    }
}

/// A tree that records the order of removals.
struct Recording {
    inner: LocalTree,
    removed: StdMutex<Vec<String>>,
}

impl Tree for Recording {
    fn describe(&self, key: &str) -> String {
        key.to_string()
    }
    fn walk(
        &self,
        visit: &mut dyn FnMut(Entry) -> io::Result<()>,
        problem: &mut dyn FnMut(String, String),
    ) -> io::Result<()> {
        self.inner.walk(visit, problem)
    }
    fn read(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.read(key)
    }
    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>> {
        self.inner.modified(key)
    }
    fn remove(&self, keys: &[String]) -> io::Result<Vec<Removal>> {
        self.removed
            .lock()
            .expect("lock")
            .extend(keys.iter().cloned());
        self.inner.remove(keys)
    }
    fn batch(&self) -> usize {
        2
    }
    fn tidy(&self, keys: &[String]) {
        self.inner.tidy(keys)
    }
}

/// Prunes `root` and returns the summary and the keys removed, in order.
fn prune_dir(root: &Path, settings: &PruneSettings) -> (Summary, Vec<String>, Vec<Event>) {
    let tree = Recording {
        inner: LocalTree::open(root).expect("open"),
        removed: StdMutex::new(Vec::new()),
    };
    let events = Collected::default();
    let summary = prune(&tree, settings, &[], &events).expect("prune");
    let mut removed = tree.removed.into_inner().expect("lock");
    // Batches run concurrently: only the tiers are ordered.
    removed.dedup();
    (summary, removed, events.0.into_inner().expect("events"))
}

fn remaining(root: &Path) -> Vec<String> {
    let mut keys: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    keys.sort();
    keys
}

/// A live captions output: segments 0..=7 every 4 s (segment i stored at
/// 4i), the playlist listing 5..=7 (window 3) since 28, and the job's
/// state saved at `heartbeat` (every tick of a running job).
fn live_stream(root: &Path, heartbeat: u64) {
    for i in 0..=7u64 {
        file(
            root,
            &format!("live/captions-en-{i}.vtt"),
            "WEBVTT\n",
            4 * i,
        );
    }
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:5\n");
    for i in 5..=7 {
        playlist.push_str(&format!("#EXTINF:4.000,\ncaptions-en-{i}.vtt\n"));
    }
    file(root, "live/captions-en.m3u8", &playlist, 28);
    file(root, "live/.vidpipe/captions-live.json", "{}", heartbeat);
}

#[test]
fn segments_that_left_a_live_window_go_after_their_grace_to_the_second() {
    // Grace: 4 s × (3 listed + 1) = 16 s after leaving. Segments 0..=2
    // left at the latest when 5 was stored (20), 3 when 6 was (24), 4
    // when 7 was (28).
    for (now, gone) in [
        (35, vec![]),
        (36, vec![0, 1, 2]),
        (39, vec![0, 1, 2]),
        (40, vec![0, 1, 2, 3]),
        (44, vec![0, 1, 2, 3, 4]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        live_stream(dir.path(), now);
        let (summary, _, _) = prune_dir(dir.path(), &settings(now, 2));
        let left = remaining(dir.path());
        for i in 0..=7u64 {
            let key = format!("live/captions-en-{i}.vtt");
            assert_eq!(
                !left.contains(&key),
                gone.contains(&i),
                "at {now}: segment {i}: {left:?}"
            );
        }
        assert_eq!(
            summary
                .deleted
                .get(&Reason::LeftWindow)
                .map_or(0, |c| c.files),
            gone.len() as u64
        );
        // The window and the live job's state stay.
        assert!(left.contains(&"live/captions-en.m3u8".to_string()));
        assert!(left.contains(&"live/.vidpipe/captions-live.json".to_string()));
    }
}

#[test]
fn nothing_younger_than_the_limit_goes_even_past_its_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    live_stream(dir.path(), 60);
    // Past every grace, but the limit is a minute.
    let (summary, mut removed, _) = prune_dir(dir.path(), &settings(60, 50));
    removed.sort();
    assert_eq!(
        removed,
        [
            "live/captions-en-0.vtt",
            "live/captions-en-1.vtt",
            "live/captions-en-2.vtt"
        ]
    );
    assert_eq!(summary.kept.get(&Reason::Young).map_or(0, |c| c.files), 2);
}

/// A transcode that has stored segments but no playlist yet.
fn transcode_in_progress(root: &Path, checkpoint_at: u64) {
    for i in 0..3 {
        file(root, &format!("out/talk/720p/seg_0000{i}.ts"), "ts", 10 + i);
        file(root, &format!("out/talk/360p/seg_0000{i}.ts"), "ts", 10 + i);
    }
    file(root, "out/talk/thumbnail.jpg", "jpg", 5);
    file(
        root,
        "out/talk/.vidpipe/checkpoint.json",
        "{}",
        checkpoint_at,
    );
}

#[test]
fn a_job_in_progress_keeps_its_unlisted_segments_however_old() {
    let dir = tempfile::tempdir().expect("tempdir");
    transcode_in_progress(dir.path(), 100);
    let (summary, removed, _) = prune_dir(dir.path(), &settings(101, 10));
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(
        summary.kept.get(&Reason::InProgress).map_or(0, |c| c.files),
        8
    );
}

#[test]
fn an_abandoned_job_loses_its_segments_and_state_but_not_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    transcode_in_progress(dir.path(), 20);
    let (summary, _, _) = prune_dir(dir.path(), &settings(100, 10));
    assert_eq!(remaining(dir.path()), ["out/talk/thumbnail.jpg"]);
    assert_eq!(
        summary
            .deleted
            .get(&Reason::Unreferenced)
            .map_or(0, |c| c.files),
        6
    );
    assert_eq!(
        summary.deleted.get(&Reason::State).map_or(0, |c| c.files),
        1
    );
    // The emptied rendition directories went too.
    assert!(!dir.path().join("out/talk/720p").exists());
}

/// A finished VOD package, and a segment of an older ladder nobody lists.
fn published(root: &Path) {
    file(
        root,
        "out/talk/master.m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n",
        50,
    );
    file(
        root,
        "out/talk/720p/index.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg_00000.ts\n#EXTINF:6,\nseg_00001.ts\n#EXT-X-ENDLIST\n",
        50,
    );
    file(root, "out/talk/720p/seg_00000.ts", "ts", 40);
    file(root, "out/talk/720p/seg_00001.ts", "ts", 45);
    file(root, "out/talk/360p/seg_00000.ts", "old ladder", 10);
    file(root, "out/talk/720p/seg_00002.ts.part", "torn", 10);
    file(root, "out/talk/thumbnail.jpg", "jpg", 40);
    file(root, "out/talk/.vidpipe/checkpoint.json", "{}", 50);
    file(root, "out/talk/.vidpipe/checkpoint.json.damaged", "{", 20);
}

#[test]
fn published_output_is_kept_and_only_its_leftovers_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    published(dir.path());
    let (summary, _, _) = prune_dir(dir.path(), &settings(100, 10));
    assert_eq!(
        remaining(dir.path()),
        [
            "out/talk/.vidpipe/checkpoint.json",
            "out/talk/720p/index.m3u8",
            "out/talk/720p/seg_00000.ts",
            "out/talk/720p/seg_00001.ts",
            "out/talk/master.m3u8",
            "out/talk/thumbnail.jpg"
        ]
    );
    assert_eq!(
        summary
            .deleted
            .get(&Reason::Unreferenced)
            .map_or(0, |c| c.files),
        1
    );
    assert_eq!(summary.deleted.get(&Reason::Temp).map_or(0, |c| c.files), 1);
    // The finished job's record stays (a re-run then costs nothing), the
    // damaged copy goes.
    assert_eq!(
        summary.deleted.get(&Reason::State).map_or(0, |c| c.files),
        1
    );
}

#[test]
fn a_joined_commentary_keeps_its_chunks_and_an_abandoned_one_loses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    for out in ["done", "abandoned"] {
        for i in 0..2 {
            file(
                dir.path(),
                &format!("{out}/chunks/chunk_000{i}.mp4"),
                "mp4",
                10,
            );
        }
        file(
            dir.path(),
            &format!("{out}/.vidpipe/commentary/state.json"),
            "{}",
            20,
        );
    }
    file(dir.path(), "done/commentary.mp4", "mp4", 20);
    let (summary, _, _) = prune_dir(dir.path(), &settings(100, 10));
    assert_eq!(
        remaining(dir.path()),
        [
            "done/.vidpipe/commentary/state.json",
            "done/chunks/chunk_0000.mp4",
            "done/chunks/chunk_0001.mp4",
            "done/commentary.mp4",
        ]
    );
    assert_eq!(
        summary
            .deleted
            .get(&Reason::Unreferenced)
            .map_or(0, |c| c.files),
        2
    );
}

#[test]
fn expire_removes_an_old_output_master_first_then_media_playlists() {
    let dir = tempfile::tempdir().expect("tempdir");
    published(dir.path());
    let mut s = settings(100, 10);
    s.expire = true;
    let (summary, removed, _) = prune_dir(dir.path(), &s);
    assert!(
        remaining(dir.path()).is_empty(),
        "{:?}",
        remaining(dir.path())
    );
    assert_eq!(
        removed[..2],
        ["out/talk/master.m3u8", "out/talk/720p/index.m3u8"]
    );
    assert_eq!(
        summary.deleted.get(&Reason::Expired).map_or(0, |c| c.files),
        9,
        "{summary:?}"
    );
    // Changed within the limit: in progress, only the old temp file goes.
    let dir = tempfile::tempdir().expect("tempdir");
    published(dir.path());
    let mut s = settings(55, 10);
    s.expire = true;
    let (_, removed, _) = prune_dir(dir.path(), &s);
    assert_eq!(removed, ["out/talk/720p/seg_00002.ts.part"]);
}

#[test]
fn a_tree_vidpipe_does_not_recognise_is_left_alone_without_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    file(dir.path(), "raw/a.mp4", "video", 1);
    file(dir.path(), "raw/b.ts", "ts", 1);
    file(dir.path(), "raw/new.mp4", "video", 99);
    let (summary, removed, _) = prune_dir(dir.path(), &settings(100, 10));
    assert!(removed.is_empty());
    assert_eq!(
        summary
            .kept
            .get(&Reason::Unrecognised)
            .map_or(0, |c| c.files),
        3
    );
    let mut s = settings(100, 10);
    s.expire = true;
    prune_dir(dir.path(), &s);
    assert_eq!(remaining(dir.path()), ["raw/new.mp4"]);
}

#[test]
fn a_malformed_playlist_is_reported_and_its_output_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    published(dir.path());
    file(
        dir.path(),
        "out/talk/720p/index.m3u8",
        "#EXTM3U\n#EXTINF:6,\n",
        50,
    );
    let mut s = settings(100, 10);
    s.expire = true;
    let (summary, removed, events) = prune_dir(dir.path(), &s);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(summary.failed, 1);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Error { input, message }
        if input.ends_with("720p/index.m3u8") && message.contains("without a URI"))));
}

#[test]
fn a_dry_run_deletes_nothing_and_says_what_would_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    live_stream(dir.path(), 44);
    let before = remaining(dir.path());
    let mut s = settings(44, 2);
    s.dry_run = true;
    let (summary, removed, events) = prune_dir(dir.path(), &s);
    assert!(removed.is_empty());
    assert_eq!(remaining(dir.path()), before);
    assert_eq!(summary.deleted_total().files, 5);
    let deleted = events
        .iter()
        .filter(|e| matches!(e, Event::Deleted { dry_run: true, .. }))
        .count();
    let kept = events
        .iter()
        .filter(|e| matches!(e, Event::Kept { .. }))
        .count();
    assert_eq!((deleted, kept), (5, 5));
}

#[test]
fn a_link_to_a_directory_outside_is_never_entered() {
    let outside = tempfile::tempdir().expect("tempdir");
    file(outside.path(), "precious/seg_00000.ts", "keep me", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    transcode_in_progress(dir.path(), 20);
    std::os::unix::fs::symlink(
        outside.path().join("precious"),
        dir.path().join("out/talk/720p/link"),
    )
    .expect("link");
    let mut s = settings(100, 10);
    s.expire = true;
    prune_dir(dir.path(), &s);
    assert_eq!(remaining(outside.path()), ["precious/seg_00000.ts"]);
}
