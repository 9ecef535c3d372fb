//! `--shard K/N` and `--shard auto` on the batch commands: which inputs a
//! shard takes (checked against the documented rule, FNV-1a 64 of each
//! input's name modulo N, computed here independently), the scheduler
//! variables `auto` reads, an empty shard that is not a failure, and the
//! `shard`/`kept`/`of` fields of each input's first event; and a real
//! Slurm job array whose tasks together transcode every clip once.

mod common;

use common::garage::Garage;
use common::slurm::Slurm;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// Every variable `--shard auto` reads.
const SCHEDULER_VARS: &[&str] = &[
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "VIDPIPE_SHARD_COUNT",
];

/// The README's rule: FNV-1a 64 of the name's UTF-8 bytes, modulo N, + 1.
fn shard_of(name: &str, count: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash % count + 1
}

/// The names of `names` that shard `index` of `count` takes.
fn share(names: &[&str], index: u64, count: u64) -> BTreeSet<String> {
    names
        .iter()
        .filter(|n| shard_of(n, count) == index)
        .map(|n| n.to_string())
        .collect()
}

/// vidpipe with no scheduler variables from the environment it runs in.
fn outside_any_array() -> Command {
    let mut cmd = vidpipe();
    for var in SCHEDULER_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Tiny clips named `names` in a fresh directory.
fn clips(dir: &Path, names: &[&str]) -> std::path::PathBuf {
    let src = dir.join("in");
    std::fs::create_dir(&src).expect("mkdir");
    for name in names {
        make_clip(&src, name, &ClipSpec::new(160, 90, 1.0));
    }
    src
}

/// `transcode-hls SRC -o OUT ARGS` with a one-rung ladder and JSON events.
fn transcode(cmd: &mut Command, src: &Path, out: &Path, args: &[&str]) -> Output {
    run(cmd
        .arg("transcode-hls")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(["--ladder", "90:150k", "--preset", "ultrafast"])
        .args(["--progress", "json"])
        .args(args))
}

/// The `probe` events of a run: file name, shard, kept, of.
fn probes(o: &Output) -> Vec<(String, serde_json::Value, u64, u64)> {
    events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "probe")
        .map(|e| {
            let input = e["input"].as_str().expect("input");
            let name = Path::new(input).file_name().expect("name");
            (
                name.to_string_lossy().into_owned(),
                e["shard"].clone(),
                e["kept"].as_u64().expect("kept"),
                e["of"].as_u64().expect("of"),
            )
        })
        .collect()
}

/// Runs `cmd` (an array task) with `args` and checks that it transcoded
/// just the clips of shard `index` of `count`, each `probe` naming it.
fn takes_its_share(mut cmd: Command, args: &[&str], names: &[&str], (index, count): (u64, u64)) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = clips(tmp.path(), names);
    let out = tmp.path().join("out");
    let o = transcode(&mut cmd, &src, &out, args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = share(names, index, count);
    assert!(
        !expected.is_empty() && expected.len() < names.len(),
        "the clip names should split: {expected:?}"
    );
    let probes = probes(&o);
    let probed: BTreeSet<String> = probes.iter().map(|p| p.0.clone()).collect();
    assert_eq!(probed, expected);
    for (name, shard, kept, of) in &probes {
        assert_eq!(shard, &format!("{index}/{count}"), "{name}");
        assert_eq!((*kept, *of), (expected.len() as u64, names.len() as u64));
    }
    for name in names {
        let stem = name.trim_end_matches(".mp4");
        let published = out.join(stem).join("master.m3u8").exists();
        assert_eq!(published, expected.contains(*name), "{name}");
    }
}

#[test]
fn shard_auto_takes_the_slurm_array_task() {
    let names = ["red.mp4", "green.mp4", "blue.mp4"];
    let mut cmd = outside_any_array();
    // Task 8 of an array 7-8: the second of two.
    cmd.env("SLURM_ARRAY_TASK_ID", "8")
        .env("SLURM_ARRAY_TASK_MIN", "7")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .env("VIDPIPE_SHARD", "auto");
    takes_its_share(cmd, &[], &names, (2, 2));
}

#[test]
fn shard_auto_takes_the_kubernetes_completion_index_with_vidpipe_shard_count() {
    let names = ["talk.mp4", "demo.mp4", "intro.mp4"];
    let mut cmd = outside_any_array();
    cmd.env("JOB_COMPLETION_INDEX", "0")
        .env("VIDPIPE_SHARD_COUNT", "2");
    takes_its_share(cmd, &["--shard", "auto"], &names, (1, 2));
}

#[test]
fn shard_auto_outside_any_array_is_a_usage_error_naming_the_variables() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = run(outside_any_array()
        .args(["transcode-hls", "in.mp4", "-o"])
        .arg(tmp.path())
        .args(["--shard", "auto"]));
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    for var in SCHEDULER_VARS
        .iter()
        .filter(|v| **v != "SLURM_ARRAY_TASK_STEP")
    {
        assert!(stderr.contains(var), "{var} in {stderr}");
    }
    // An index without a count names the count it needs.
    let o = run(outside_any_array().env("JOB_COMPLETION_INDEX", "1").args([
        "upload-chunked",
        "in.bin",
        "s3://media/p/",
        "--shard",
        "auto",
    ]));
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("VIDPIPE_SHARD_COUNT is not"), "{stderr}");
    // An index beyond the count names the index.
    let o = run(outside_any_array()
        .env("AWS_BATCH_JOB_ARRAY_INDEX", "3")
        .env("AWS_BATCH_JOB_ARRAY_SIZE", "3")
        .args([
            "upload-chunked",
            "in.bin",
            "s3://media/p/",
            "--shard",
            "auto",
        ]));
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("AWS_BATCH_JOB_ARRAY_INDEX=3"), "{stderr}");
}

#[test]
fn a_shard_that_receives_no_input_says_so_and_succeeds() {
    let names = ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4"];
    assert!(share(&names, 7, 8).is_empty());
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("in");
    std::fs::create_dir(&src).expect("mkdir");
    for name in names {
        // Never opened: shard 7 takes none of them.
        std::fs::write(src.join(name), b"not a video").expect("write");
    }
    let out = tmp.path().join("out");
    let o = run(outside_any_array()
        .arg("transcode-hls")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .args(["--shard", "7/8"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("shard 7/8 received none of the 5 inputs"),
        "{stderr}"
    );
    // Without sharding, no inputs at all is still a failure.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let o = run(outside_any_array()
        .arg("transcode-hls")
        .arg(&empty)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no video files found"));
}

fn upload(garage: &Garage, state: &Path, args: &[&str]) -> Command {
    let mut cmd = outside_any_array();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state)
        .arg("upload-chunked")
        .args(args);
    cmd
}

#[test]
fn upload_shards_each_upload_their_share_and_together_every_file_once() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let files = [
        "a.bin",
        "b.bin",
        "x.bin",
        "sub/e.bin",
        "sub/h.bin",
        "sub/deep/g.bin",
    ];
    for (i, file) in files.iter().enumerate() {
        let path = src.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, format!("file {i}")).expect("write");
    }
    let src_arg = format!("{}/", src.display());
    let mut union = Vec::new();
    for index in 1..=3u64 {
        let dest = format!("s3://{}/shard{index}/", garage.bucket);
        let shard = format!("{index}/3");
        let o = run(&mut upload(
            &garage,
            tmp.path(),
            &[&src_arg, &dest, "--shard", &shard, "--progress", "json"],
        ));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let expected = share(&files, index, 3);
        assert!(!expected.is_empty(), "shard {shard} should get files");
        let prefix = format!("shard{index}/");
        let keys: BTreeSet<String> = garage
            .keys(&prefix)
            .into_iter()
            .map(|k| k[prefix.len()..].to_string())
            .collect();
        assert_eq!(keys, expected, "shard {shard}");
        let initialized: Vec<_> = events(&o.stdout)
            .into_iter()
            .filter(|e| e["event"] == "initialized")
            .collect();
        assert_eq!(initialized.len(), expected.len());
        for e in &initialized {
            assert_eq!(e["shard"], shard.as_str(), "{e}");
            assert_eq!(e["kept"], expected.len() as u64, "{e}");
            assert_eq!(e["of"], files.len() as u64, "{e}");
        }
        union.extend(keys);
    }
    union.sort();
    let mut all: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    all.sort();
    assert_eq!(union, all, "every file once across the shards");

    // A shard that gets none of the files says so and succeeds.
    assert!(share(&files, 5, 8).is_empty());
    let dest = format!("s3://{}/empty/", garage.bucket);
    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[&src_arg, &dest, "--shard", "5/8"],
    ));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("shard 5/8 received none of the 6 inputs"),
        "{stderr}"
    );
    assert!(garage.keys("empty/").is_empty());

    // Without --shard the event says so: null, all kept.
    let dest = format!("s3://{}/all/", garage.bucket);
    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[&src_arg, &dest, "--progress", "json"],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let initialized: Vec<_> = events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "initialized")
        .collect();
    assert_eq!(initialized.len(), files.len());
    for e in &initialized {
        assert!(e["shard"].is_null(), "{e}");
        assert_eq!((e["kept"].as_u64(), e["of"].as_u64()), (Some(6), Some(6)));
    }
}

#[test]
fn an_s3_listing_is_split_by_each_keys_name_below_the_prefix() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let names = ["a/red.mp4", "b/green.mp4", "blue.mp4"];
    // By file name alone `b/green.mp4` would go to the other shard.
    assert_ne!(shard_of("b/green.mp4", 2), shard_of("green.mp4", 2));
    let clips_dir = tmp.path().join("clips");
    std::fs::create_dir(&clips_dir).expect("mkdir");
    for name in names {
        let file = name.replace('/', "-");
        let clip = make_clip(&clips_dir, &file, &ClipSpec::new(160, 90, 1.0));
        garage.put(
            &format!("incoming/{name}"),
            std::fs::read(clip).expect("read"),
        );
    }
    let listing = format!("s3://{}/incoming/", garage.bucket);
    let mut union = Vec::new();
    for index in 1..=2u64 {
        let shard = format!("{index}/2");
        let mut cmd = outside_any_array();
        garage.env(&mut cmd);
        let out = tmp.path().join(format!("out{index}"));
        let o = run(cmd
            .args(["transcode-hls", &listing, "-o"])
            .arg(&out)
            .args(["--ladder", "90:150k", "--preset", "ultrafast"])
            .args(["--shard", &shard, "--progress", "json"]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let probed: BTreeSet<String> = events(&o.stdout)
            .into_iter()
            .filter(|e| e["event"] == "probe")
            .map(|e| {
                assert_eq!(e["shard"], shard.as_str(), "{e}");
                let input = e["input"].as_str().expect("input");
                input[listing.len()..].to_string()
            })
            .collect();
        assert_eq!(probed, share(&names, index, 2), "shard {shard}");
        union.extend(probed);
    }
    union.sort();
    let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    all.sort();
    assert_eq!(union, all, "every object once across the shards");

    // A single object is named by its last path component.
    let object = format!("{listing}b/green.mp4");
    let shard = format!("{}/2", shard_of("green.mp4", 2));
    let mut cmd = outside_any_array();
    garage.env(&mut cmd);
    let o = run(cmd
        .args(["transcode-hls", &object, "-o"])
        .arg(tmp.path().join("single"))
        .args(["--ladder", "90:150k", "--preset", "ultrafast"])
        .args(["--shard", &shard, "--progress", "json"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let probes = events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "probe")
        .count();
    assert_eq!(probes, 1, "shard {shard} takes green.mp4");
}

/// The environment `sbatch` passes on to an array task: only what the task
/// itself sets may choose the shard, the server (if any) and a state
/// directory of the task's "machine".
fn task_env(cmd: &mut Command, garage: Option<&Garage>, state: &Path) {
    for (key, _) in std::env::vars() {
        if key.starts_with("VIDPIPE_") {
            cmd.env_remove(key);
        }
    }
    if let Some(garage) = garage {
        garage.env(cmd);
    }
    cmd.env("XDG_STATE_HOME", state);
}

#[test]
fn a_slurm_job_array_with_shard_auto_transcodes_every_clip_once() {
    let slurm = Slurm::start();
    let names = [
        "red.mp4",
        "green.mp4",
        "blue.mp4",
        "talk.mp4",
        "demo.mp4",
        "intro.mp4",
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = clips(tmp.path(), &names);
    let out = tmp.path().join("out");
    let logs = tmp.path().join("events");
    std::fs::create_dir(&logs).expect("mkdir");
    // Tasks 4, 5 and 6: shards 1/3, 2/3 and 3/3.
    let script = format!(
        "#!/bin/sh\n\
         exec {} transcode-hls {} -o {} --ladder 90:150k --preset ultrafast --threads 1 \
         --shard auto --progress json > {}/task-$SLURM_ARRAY_TASK_ID.json\n",
        env!("CARGO_BIN_EXE_vidpipe"),
        src.display(),
        out.display(),
        logs.display()
    );
    let job = slurm.sbatch_with(&["--array=4-6"], &script, |cmd| {
        task_env(cmd, None, &tmp.path().join("state"));
    });
    slurm.wait_completed(job, std::time::Duration::from_secs(300));
    let mut union = Vec::new();
    for (id, index) in [(4, 1), (5, 2), (6, 3)] {
        let stdout = std::fs::read(logs.join(format!("task-{id}.json"))).expect("events");
        let probed: BTreeSet<String> = events(&stdout)
            .into_iter()
            .filter(|e| e["event"] == "probe")
            .map(|e| {
                assert_eq!(e["shard"], format!("{index}/3"), "{e}");
                assert_eq!(e["of"], names.len() as u64, "{e}");
                let input = e["input"].as_str().expect("input");
                let name = Path::new(input).file_name().expect("name");
                name.to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(probed, share(&names, index, 3), "task {id}");
        union.extend(probed);
    }
    union.sort();
    let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    all.sort();
    assert_eq!(union, all, "every clip once across the array");
    for name in names {
        let stem = name.trim_end_matches(".mp4");
        assert!(out.join(stem).join("master.m3u8").exists(), "{name}");
    }
}

#[test]
fn a_slurm_job_array_publishes_a_bucket_of_clips_into_a_bucket_each_once() {
    let slurm = Slurm::start();
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let names = ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4", "f.mp4"];
    for name in names {
        let clip = make_clip(tmp.path(), name, &ClipSpec::new(854, 480, 2.0));
        garage.put(&format!("in/{name}"), std::fs::read(clip).expect("clip"));
    }
    let logs = tmp.path().join("events");
    std::fs::create_dir(&logs).expect("mkdir");
    let script = format!(
        "#!/bin/sh\n\
         exec {} transcode-hls s3://{bucket}/in/ -o s3://{bucket}/out --preset ultrafast \
         --segment-duration 2 --threads 1 --shard auto --progress json \
         > {}/task-$SLURM_ARRAY_TASK_ID.json\n",
        env!("CARGO_BIN_EXE_vidpipe"),
        logs.display(),
        bucket = garage.bucket,
    );
    let job = slurm.sbatch_with(&["--array=1-3"], &script, |cmd| {
        task_env(cmd, Some(&garage), &tmp.path().join("state"));
    });
    slurm.wait_completed(job, std::time::Duration::from_secs(600));
    // Every input published, by exactly one task.
    let mut done = Vec::new();
    for id in 1..=3 {
        let stdout = std::fs::read(logs.join(format!("task-{id}.json"))).expect("events");
        done.extend(
            events(&stdout)
                .into_iter()
                .filter(|e| e["event"] == "done")
                .filter_map(|e| e["input"].as_str().map(str::to_string)),
        );
    }
    done.sort();
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("s3://{}/in/{n}", garage.bucket))
        .collect();
    assert_eq!(done, expected, "each input published once across the array");
    for name in names {
        let stem = name.trim_end_matches(".mp4");
        let local = tmp.path().join("check").join(stem);
        garage.download(&format!("out/{stem}/"), &local);
        check_package(&local, &Expect::sd_clip(2));
    }
}

#[test]
fn a_task_cancelled_mid_input_and_resubmitted_elsewhere_resumes_from_the_bucket() {
    let slurm = Slurm::start();
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(tmp.path(), "long.mp4", &ClipSpec::new(854, 480, 10.0));
    garage.put("in/long.mp4", std::fs::read(clip).expect("clip"));
    // One array task; each submission runs as if on its own machine: its
    // own state directory and working directory.
    let submit = |machine: &str| {
        let home = tmp.path().join(machine);
        std::fs::create_dir_all(&home).expect("mkdir");
        let script = format!(
            "#!/bin/sh\n\
             exec {} transcode-hls s3://{bucket}/in/ -o s3://{bucket}/out --preset medium \
             --segment-duration 1 --threads 1 --shard auto --progress json > {}/events.json\n",
            env!("CARGO_BIN_EXE_vidpipe"),
            home.display(),
            bucket = garage.bucket,
        );
        let chdir = format!("--chdir={}", home.display());
        let job = slurm.sbatch_with(&["--array=2-2", &chdir], &script, |cmd| {
            task_env(cmd, Some(&garage), &home.join("state"));
        });
        (job, home)
    };
    let (first, _) = submit("first");
    // Cancel the task once a few segments of every rendition are recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let records = garage.keys("out/long/.vidpipe/segments/360p/");
        if records.len() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no progress:\n{}",
            slurm.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    slurm.scancel(&format!("{first}_2"));
    let tasks = slurm.wait(first, std::time::Duration::from_secs(60));
    assert_eq!(tasks[0].state, "CANCELLED", "{tasks:?}");
    assert!(!garage
        .keys("out/long/")
        .contains(&"out/long/master.m3u8".to_string()));
    let before: Vec<(String, String, String)> = garage
        .objects("out/long/")
        .into_iter()
        .filter(|(k, _, _)| k.ends_with(".ts"))
        .collect();

    let (second, home) = submit("second");
    slurm.wait_completed(second, std::time::Duration::from_secs(600));
    let ev = events(&std::fs::read(home.join("events.json")).expect("events"));
    assert!(
        ev.iter().any(|e| e["event"] == "resume"),
        "no resume: {ev:?}"
    );
    // Segments stored before the cut keep their ETag and time, but at most
    // the one per rendition being recorded when the task was cancelled.
    let redone = garage.stored_again(&before);
    assert!(redone.values().all(|&n| n <= 1), "stored again: {redone:?}");
    eprintln!(
        "{} segments stored before the cut; stored again after the move: {redone:?}",
        before.len()
    );
    let local = tmp.path().join("check");
    garage.download("out/long/", &local);
    check_package(&local, &Expect::sd_clip(10));
}
