//! upload-chunked against a real Garage server: byte-exact round trips of
//! many sizes, resume after kill -9 without re-sending acknowledged parts
//! (also on another machine, from the parts the server holds), a changed
//! source refused, two machines on one key, and bad input with clear errors.

mod common;

use common::garage::Garage;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn write_random(path: &Path, size: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x: u64 = size ^ 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let chunk = x.to_le_bytes();
        let n = left.min(8) as usize;
        file.write_all(&chunk[..n]).expect("write");
        left -= n as u64;
    }
    file.flush().expect("flush");
}

fn upload(garage: &Garage, state: &Path, args: &[&str]) -> Command {
    let mut cmd = vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", state)
        .arg("upload-chunked")
        .args(args);
    cmd
}

/// vidpipe run by a user that a mode-000 file stops: root reads any file,
/// so `nobody` when we are root.
fn unprivileged_vidpipe() -> Command {
    let as_root = run(Command::new("id").arg("-u")).stdout == b"0\n";
    if as_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_vidpipe"));
        c
    } else {
        vidpipe()
    }
}

/// Makes `file` unreadable (for [`unprivileged_vidpipe`]).
fn lock(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o000)).expect("chmod");
}

/// Lets [`unprivileged_vidpipe`] into `dir` (and write its state there).
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
}

/// Starts an upload with `--progress json` and returns once `parts` parts
/// are acknowledged (the upload is then still running).
fn uploading_past(mut cmd: Command, parts: usize) -> std::process::Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut seen = 0;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let e: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
        if e["event"] == "part_done" {
            seen += 1;
            if seen == parts {
                return child;
            }
        }
    }
    let _ = child.wait();
    panic!("the upload ended after {seen} parts");
}

/// Arguments of an upload in 5 MiB parts with `concurrency` parts in
/// flight and JSON events: enough parts to kill or change one mid-way.
fn small_parts<'a>(src: &'a str, dest: &'a str, concurrency: &'a str) -> [&'a str; 8] {
    [
        src,
        dest,
        "--part-size",
        "5MiB",
        "--concurrency",
        concurrency,
        "--progress",
        "json",
    ]
}

#[test]
fn files_of_every_size_round_trip_byte_for_byte() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    const MIB: u64 = 1 << 20;
    let sizes = [
        0,
        1,
        5 * MIB - 1,
        5 * MIB,
        5 * MIB + 1,
        12 * MIB + 123,
        300 * MIB + 7,
    ];
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).expect("mkdir");
    for size in sizes {
        write_random(&src.join(format!("f{size}.bin")), size);
    }
    let o = run(upload(
        &garage,
        tmp.path(),
        &[
            src.to_str().expect("utf8"),
            &format!("s3://{}/rt/", garage.bucket),
        ],
    )
    .args([
        "--part-size",
        "5MiB",
        "--concurrency",
        "4",
        "--progress",
        "json",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o.stdout);
    assert_eq!(
        ev.iter().filter(|e| e["event"] == "done").count(),
        sizes.len()
    );
    // Each file's first event says where it stands in the batch.
    let mut positions: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| e["event"] == "initialized")
        .map(|e| {
            (
                e["index"].as_u64().expect("index"),
                e["total"].as_u64().expect("total"),
            )
        })
        .collect();
    positions.sort_unstable();
    let n = sizes.len() as u64;
    assert_eq!(positions, (1..=n).map(|i| (i, n)).collect::<Vec<_>>());
    let parts_300 = ev
        .iter()
        .filter(|e| {
            e["event"] == "part_done"
                && e["input"]
                    .as_str()
                    .is_some_and(|i| i.ends_with(&format!("f{}.bin", 300 * MIB + 7)))
        })
        .count();
    assert_eq!(parts_300, 61, "300 MiB in 5 MiB parts");
    for size in sizes {
        let name = format!("f{size}.bin");
        let got = garage.get(&format!("rt/src/{name}"));
        assert_eq!(got.len() as u64, size, "{name} size");
        assert!(
            got == std::fs::read(src.join(&name)).expect("read"),
            "{name} bytes differ"
        );
    }
}

#[test]
fn killed_upload_resumes_without_resending_acknowledged_parts() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("big.bin");
    write_random(&file, 80 << 20);
    let dest = format!("s3://{}/resume/big.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "2");
    let mut child = uploading_past(upload(&garage, tmp.path(), &args), 5);
    child.kill().expect("kill -9");
    assert!(
        !child.wait().expect("wait").success(),
        "finished before the kill"
    );

    // What the server acknowledged versus what the journal kept: at most
    // the parts in flight at the kill can be acknowledged but unrecorded.
    let status = run(&mut upload(
        &garage,
        tmp.path(),
        &["--status", "--json", args[0], args[1]],
    ));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let journaled = status["parts_journaled"].as_u64().expect("journaled");
    let acknowledged = status["parts_on_server"].as_u64().expect("on server");
    assert!(journaled >= 5 && acknowledged >= journaled, "{status}");
    assert!(
        acknowledged - journaled <= 2,
        "more than `concurrency` acknowledged parts unrecorded: {status}"
    );

    let o = run(&mut upload(&garage, tmp.path(), &args));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = events(&o.stdout);
    let init = ev
        .iter()
        .find(|e| e["event"] == "initialized")
        .expect("initialized");
    assert_eq!(init["parts_total"], 16);
    assert_eq!(init["parts_done"].as_u64(), Some(journaled), "{init}");
    let sent = ev.iter().filter(|e| e["event"] == "part_done").count() as u64;
    assert_eq!(
        sent,
        16 - journaled,
        "only the unrecorded parts are sent again"
    );
    // So the acknowledged parts sent twice are at most `concurrency`.
    assert!(sent - (16 - acknowledged) <= 2);
    let got = garage.get("resume/big.bin");
    assert!(
        got == std::fs::read(&file).expect("read"),
        "stored object differs from the source"
    );
}

#[test]
fn a_changed_source_is_refused_and_nothing_is_corrupted() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("moving.bin");
    write_random(&file, 40 << 20);
    let dest = format!("s3://{}/moving.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "1");
    let mut child = uploading_past(upload(&garage, tmp.path(), &args), 1);
    child.kill().expect("kill");
    let _ = child.wait();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(b"more"))
        .expect("append");
    let o = run(&mut upload(&garage, tmp.path(), &args));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("moving.bin") && stderr.contains("changed"),
        "{stderr}"
    );
    assert!(
        !garage
            .keys("moving.bin")
            .contains(&"moving.bin".to_string()),
        "a half upload became an object"
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("ok.bin");
    write_random(&good, 1000);
    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            "/no/such/file.bin",
            good.to_str().expect("utf8"),
            &format!("s3://{}/bad/", garage.bucket),
        ],
    ));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/no/such/file.bin") && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(
        garage.keys("bad/").contains(&"bad/ok.bin".to_string()),
        "the good file was not uploaded"
    );

    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[good.to_str().expect("utf8"), "s3://no-such-bucket/x.bin"],
    ));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ok.bin") && stderr.contains("no-such-bucket"),
        "{stderr}"
    );

    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            good.to_str().expect("utf8"),
            "s3://media/x.bin",
            "--part-size",
            "1MiB",
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--part-size"));
}

#[test]
fn interrupted_upload_can_be_inspected_listed_aborted_and_presigned() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("held.bin");
    write_random(&file, 60 << 20);
    let dest = format!("s3://{}/held/held.bin", garage.bucket);
    let src = file.to_str().expect("utf8");
    let args = small_parts(src, &dest, "1");
    let child = uploading_past(upload(&garage, tmp.path(), &args), 1);
    let sent = run(Command::new("kill").args(["-INT", &child.id().to_string()]));
    assert!(sent.status.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );

    let status = run(&mut upload(
        &garage,
        tmp.path(),
        &["--status", "--json", src, &dest],
    ));
    assert!(status.status.success());
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(s["parts_total"], 12);
    assert!(
        s["parts_journaled"].as_u64() >= Some(1)
            && s["parts_on_server"].as_u64() >= s["parts_journaled"].as_u64()
    );

    let listed = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            "--list-incomplete",
            "--json",
            &format!("s3://{}/held/", garage.bucket),
        ],
    ));
    assert!(listed.status.success());
    let uploads = events(&listed.stdout);
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0]["key"], "held/held.bin");

    let aborted = run(&mut upload(&garage, tmp.path(), &["--abort", src, &dest]));
    assert!(
        aborted.status.success(),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    let listed = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            "--list-incomplete",
            "--json",
            &format!("s3://{}/held/", garage.bucket),
        ],
    ));
    assert!(
        events(&listed.stdout).is_empty(),
        "the upload is still listed after --abort"
    );

    let small = tmp.path().join("small.txt");
    std::fs::write(&small, "hello presigned world").expect("write");
    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            small.to_str().expect("utf8"),
            &format!("s3://{}/p/small.txt", garage.bucket),
            "--presign",
            "10m",
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        url.starts_with(&garage.endpoint) && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let fetched = run(Command::new("python3").args(["-c", "import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())", &url]));
    assert_eq!(
        String::from_utf8_lossy(&fetched.stdout),
        "hello presigned world"
    );
}

#[test]
fn upload_survives_resets_and_slow_downs() {
    let garage = Garage::start();
    let upstream = garage.endpoint.trim_start_matches("http://").to_string();
    let proxy = common::faulty_proxy::FaultyProxy::start(&upstream, 5);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("rough.bin");
    write_random(&file, 41 << 20);
    let mut cmd = upload(
        &garage,
        tmp.path(),
        &[
            file.to_str().expect("utf8"),
            &format!("s3://{}/rough.bin", garage.bucket),
            "--part-size",
            "5MiB",
        ],
    );
    cmd.env("AWS_ENDPOINT_URL", &proxy.endpoint).args([
        "--concurrency",
        "3",
        "--attempts",
        "8",
        "--progress",
        "json",
    ]);
    let o = run(&mut cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    use std::sync::atomic::Ordering::SeqCst;
    assert!(
        proxy.faults.slow_downs.load(SeqCst) >= 2,
        "too few SlowDowns injected"
    );
    assert!(
        proxy.faults.resets.load(SeqCst) >= 2,
        "too few resets injected"
    );
    assert!(
        garage.get("rough.bin") == std::fs::read(&file).expect("read"),
        "stored object differs"
    );
}

#[test]
fn wrong_credentials_and_unreadable_files_fail_clearly() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("secret.bin");
    write_random(&file, 1000);
    let wrong = "0000000000000000000000000000000000000000000000000000000000000bad";
    let mut cmd = upload(
        &garage,
        tmp.path(),
        &[
            file.to_str().expect("utf8"),
            &format!("s3://{}/c.bin", garage.bucket),
        ],
    );
    cmd.env("AWS_SECRET_ACCESS_KEY", wrong);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("secret.bin") && !stderr.contains(wrong),
        "{stderr}"
    );

    let locked = tmp.path().join("locked.bin");
    write_random(&locked, 1000);
    lock(&locked);
    open_up(tmp.path());
    let mut cmd = unprivileged_vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", tmp.path().join("state-nobody"))
        .args([
            "upload-chunked",
            locked.to_str().expect("utf8"),
            &format!("s3://{}/locked.bin", garage.bucket),
        ]);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("locked.bin") && stderr.contains("permission denied"),
        "{stderr}"
    );
}

#[test]
fn a_directory_keeps_its_name_unless_given_with_a_trailing_slash() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("clips");
    std::fs::create_dir_all(src.join("day1")).expect("mkdir");
    write_random(&src.join("a.bin"), 10);
    write_random(&src.join("day1/b.bin"), 20);
    let dir = src.to_str().expect("utf8");
    for (arg, prefix) in [
        (dir.to_string(), "named/"),
        (format!("{dir}/"), "contents/"),
    ] {
        let o = run(&mut upload(
            &garage,
            tmp.path(),
            &[&arg, &format!("s3://{}/{prefix}", garage.bucket)],
        ));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(
        garage.keys("named/"),
        vec![
            "named/clips/a.bin".to_string(),
            "named/clips/day1/b.bin".into()
        ]
    );
    assert_eq!(
        garage.keys("contents/"),
        vec!["contents/a.bin".to_string(), "contents/day1/b.bin".into()]
    );

    // Two sources cannot share one key: a usage error before any upload.
    let a = src.join("a.bin");
    let o = run(&mut upload(
        &garage,
        tmp.path(),
        &[
            a.to_str().expect("utf8"),
            dir,
            &format!("s3://{}/one.bin", garage.bucket),
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("end the destination with `/`"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(garage.keys("one.bin").is_empty());
}

#[test]
fn an_upload_batch_with_one_failing_file_keeps_the_others_going() {
    const MIB: u64 = 1 << 20;
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    // Four 5 MiB parts each (sizes differ so the contents do too).
    let names = ["a.bin", "locked.bin", "c.bin"];
    let files: Vec<_> = names.iter().map(|n| tmp.path().join(n)).collect();
    for (i, file) in files.iter().enumerate() {
        write_random(file, 15 * MIB + 1 + i as u64);
    }
    lock(&files[1]);
    open_up(tmp.path());
    let mut cmd = unprivileged_vidpipe();
    garage.env(&mut cmd);
    cmd.env("XDG_STATE_HOME", tmp.path().join("state"))
        .arg("upload-chunked")
        .args(&files)
        .arg(format!("s3://{}/batch/", garage.bucket))
        .args(["--part-size", "5MiB", "--concurrency", "2"])
        .args(["--progress", "json"]);
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");

    let ev = events(&o.stdout);
    let of = |e: &serde_json::Value, name: &str| {
        e["input"]
            .as_str()
            .is_some_and(|i| i.ends_with(&format!("/{name}")))
    };
    let errors: Vec<usize> = (0..ev.len())
        .filter(|&i| ev[i]["event"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "one error event: {ev:?}");
    let error = &ev[errors[0]];
    assert!(
        of(error, "locked.bin")
            && error["message"]
                .as_str()
                .is_some_and(|m| m.contains("permission denied")),
        "{error}"
    );
    let after = &ev[errors[0] + 1..];
    for name in ["a.bin", "c.bin"] {
        for kind in ["part_done", "progress", "done"] {
            assert!(
                after.iter().any(|e| e["event"] == kind && of(e, name)),
                "no {kind} event for {name} after the error: {ev:?}"
            );
        }
    }
    assert_eq!(
        stderr
            .matches(&format!("error: {}: ", files[1].display()))
            .count(),
        1,
        "one error line for the locked file:\n{stderr}"
    );

    for (name, file) in names.iter().zip(&files) {
        let key = format!("batch/{name}");
        if *name == "locked.bin" {
            assert!(!garage.keys("batch/").contains(&key), "{key} stored");
        } else {
            assert!(
                garage.get(&key) == std::fs::read(file).expect("read"),
                "{key} differs from its source"
            );
        }
    }
}

/// `--list-incomplete --json` under `prefix`: one value per upload.
fn incomplete(garage: &Garage, state: &Path, prefix: &str) -> Vec<serde_json::Value> {
    let listed = run(&mut upload(
        garage,
        state,
        &[
            "--list-incomplete",
            "--json",
            &format!("s3://{}/{prefix}", garage.bucket),
        ],
    ));
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    events(&listed.stdout)
}

#[test]
fn a_source_rewritten_during_its_upload_fails_and_leaves_nothing() {
    use std::os::unix::fs::FileExt;
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("rewritten.bin");
    // 20 parts sent one at a time: the rewrite lands long before the last.
    write_random(&file, 100 << 20);
    let dest = format!("s3://{}/changing/rewritten.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "1");
    let child = uploading_past(upload(&garage, tmp.path(), &args), 1);
    // Same size, different bytes, new mtime: part 1 on the server is stale.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|f| f.write_all_at(&[0xA5; 1 << 20], 0))
        .expect("rewrite in place");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: changed while it was being uploaded",
            file.display()
        )),
        "{stderr}"
    );
    assert!(
        garage.keys("changing/").is_empty(),
        "an object was stored from a changing file"
    );
    assert!(
        incomplete(&garage, tmp.path(), "changing/").is_empty(),
        "the multipart upload was left on the server"
    );
    let status = run(&mut upload(
        &garage,
        tmp.path(),
        &["--status", "--json", args[0], args[1]],
    ));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert!(status["upload_id"].is_null(), "journal kept: {status}");
}

#[test]
fn abort_needs_neither_the_journal_nor_the_source() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("gone.bin");
    write_random(&file, 80 << 20);
    let dest = format!("s3://{}/orphan/gone.bin", garage.bucket);
    let src = file.to_str().expect("utf8");
    let args = small_parts(src, &dest, "2");
    let mut child = uploading_past(upload(&garage, tmp.path(), &args), 2);
    child.kill().expect("kill -9");
    assert!(
        !child.wait().expect("wait").success(),
        "finished before the kill"
    );
    assert_eq!(incomplete(&garage, tmp.path(), "orphan/").len(), 1);
    std::fs::remove_file(&file).expect("remove the source");
    let journals = tmp.path().join("vidpipe/uploads");
    assert!(
        std::fs::read_dir(&journals)
            .expect("journal dir")
            .next()
            .is_some(),
        "no journal written at {}",
        journals.display()
    );
    std::fs::remove_dir_all(&journals).expect("remove the journals");

    // Under a prefix the missing file still maps to prefix + its name.
    let prefix = format!("s3://{}/orphan/", garage.bucket);
    let aborted = run(&mut upload(&garage, tmp.path(), &["--abort", src, &prefix]));
    let stderr = String::from_utf8_lossy(&aborted.stderr);
    assert!(aborted.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("aborted the upload of {src} to {dest}")),
        "{stderr}"
    );
    assert!(
        incomplete(&garage, tmp.path(), "orphan/").is_empty(),
        "the upload is still listed after --abort"
    );

    // Again, to the exact key: nothing left, and it says so.
    let again = run(&mut upload(&garage, tmp.path(), &["--abort", src, &dest]));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("nothing to abort"), "{stderr}");
}

/// Starts `args` with `--progress json`, kills it (-9) once `parts` parts
/// are acknowledged, and leaves its unfinished upload on the server.
fn killed_after(garage: &Garage, state: &Path, args: &[&str], parts: usize) {
    let mut child = uploading_past(upload(garage, state, args), parts);
    child.kill().expect("kill -9");
    assert!(
        !child.wait().expect("wait").success(),
        "finished before the kill"
    );
}

/// The one event of kind `kind` among `ev`.
fn the_event<'a>(ev: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    let found: Vec<_> = ev.iter().filter(|e| e["event"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} event: {ev:?}");
    found[0]
}

#[test]
fn an_upload_killed_on_one_machine_resumes_on_another_from_the_servers_parts() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("moved.bin");
    write_random(&file, 80 << 20);
    let dest = format!("s3://{}/moved/moved.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "2");
    killed_after(&garage, &tmp.path().join("first-machine"), &args, 5);

    // Another machine: same file, same command, no journal.
    let o = run(upload(&garage, &tmp.path().join("second-machine"), &args).arg("-v"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let ev = events(&o.stdout);
    let init = the_event(&ev, "initialized");
    assert_eq!(init["parts_total"], 16);
    let held = init["parts_done"].as_u64().expect("parts_done");
    assert!(held >= 5, "the acknowledged parts are reused: {init}");
    let adopted = the_event(&ev, "upload_adopted");
    assert_eq!(adopted["parts_held"].as_u64(), Some(held), "{adopted}");
    assert_eq!(adopted["parts_reused"].as_u64(), Some(held), "{adopted}");
    let sent = ev.iter().filter(|e| e["event"] == "part_done").count() as u64;
    assert_eq!(sent, 16 - held, "only the parts the server lacks are sent");
    assert!(stderr.contains("adopted the upload"), "{stderr}");
    assert!(
        garage.get("moved/moved.bin") == std::fs::read(&file).expect("read"),
        "stored object differs from the source"
    );
    assert!(
        incomplete(&garage, tmp.path(), "moved/").is_empty(),
        "an upload was left behind"
    );
}

#[test]
fn a_file_changed_since_its_upload_started_elsewhere_is_refused_from_the_parts_checksums() {
    use std::os::unix::fs::FileExt;
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("edited.bin");
    write_random(&file, 40 << 20);
    let dest = format!("s3://{}/edited/edited.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "1");
    killed_after(&garage, &tmp.path().join("first-machine"), &args, 2);
    // Same size, other bytes inside part 1, which the server holds.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|f| f.write_all_at(&[0xA5; 4096], 1 << 20))
        .expect("rewrite in place");

    let second = tmp.path().join("second-machine");
    let o = run(&mut upload(&garage, &second, &args));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: refusing to resume: part 1", file.display()))
            && stderr.contains("--abort"),
        "{stderr}"
    );
    assert!(
        !events(&o.stdout).iter().any(|e| e["event"] == "part_done"),
        "a part was sent to the refused upload"
    );
    assert!(garage.keys("edited/").is_empty(), "an object was stored");
    assert_eq!(
        incomplete(&garage, tmp.path(), "edited/").len(),
        1,
        "the server's upload is left in place"
    );

    // What the message says to do: abort, then upload again.
    let aborted = run(&mut upload(
        &garage,
        &second,
        &["--abort", args[0], args[1]],
    ));
    assert!(
        aborted.status.success(),
        "{}",
        String::from_utf8_lossy(&aborted.stderr)
    );
    let o = run(&mut upload(&garage, &second, &args));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        garage.get("edited/edited.bin") == std::fs::read(&file).expect("read"),
        "stored object differs from the edited source"
    );
}

#[test]
fn two_machines_resuming_the_same_upload_at_once_store_the_file_intact() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("twice.bin");
    write_random(&file, 80 << 20);
    let dest = format!("s3://{}/twice/twice.bin", garage.bucket);
    let args = small_parts(file.to_str().expect("utf8"), &dest, "2");
    killed_after(&garage, &tmp.path().join("first-machine"), &args, 3);

    // Both find the same unfinished upload and send its missing parts.
    let machines: Vec<_> = ["second-machine", "third-machine"]
        .iter()
        .map(|m| {
            upload(&garage, &tmp.path().join(m), &args)
                .arg("-v")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut succeeded = 0;
    for child in machines {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            succeeded += 1;
            continue;
        }
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("completed or aborted by another process meanwhile"),
            "{stderr}"
        );
    }
    assert!(succeeded >= 1, "neither upload succeeded");
    assert!(
        garage.get("twice/twice.bin") == std::fs::read(&file).expect("read"),
        "stored object differs from the source"
    );
}

/// Three machines on one key: the first is killed after a part; the second
/// adopts its upload and is paused after sending a part; meanwhile a third
/// adopts the same upload for `third_source` and completes it. Returns
/// what the second says when it goes on.
fn resumed_while_another_completes(
    garage: &Garage,
    tmp: &Path,
    source: &Path,
    third_source: &Path,
    dest: &str,
) -> std::process::Output {
    let args = |src: &Path| -> Vec<String> {
        [
            src.to_str().expect("utf8"),
            dest,
            "--part-size",
            "5MiB",
            "--concurrency",
            "1",
            "--progress",
            "json",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let first = args(source);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    killed_after(garage, &tmp.join("first-machine"), &first, 1);
    let mut second = upload(garage, &tmp.join("second-machine"), &first);
    second.arg("-v");
    let second = uploading_past(second, 1);
    let pid = second.id().to_string();
    assert!(run(Command::new("kill").args(["-STOP", &pid]))
        .status
        .success());
    let third = args(third_source);
    let third: Vec<&str> = third.iter().map(String::as_str).collect();
    let o = run(upload(garage, &tmp.join("third-machine"), &third).arg("-v"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("adopted the upload"), "{stderr}");
    assert!(run(Command::new("kill").args(["-CONT", &pid]))
        .status
        .success());
    second.wait_with_output().expect("wait")
}

#[test]
fn a_run_whose_shared_upload_another_completed_succeeds_only_if_the_object_is_its_file() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("shared.bin");
    write_random(&file, 30 << 20);

    // The third machine stores the same file: the second accepts it.
    let dest = format!("s3://{}/same/shared.bin", garage.bucket);
    let out = resumed_while_another_completes(&garage, tmp.path(), &file, &file, &dest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("completed or aborted by another process meanwhile"),
        "{stderr}"
    );
    assert!(
        garage.get("same/shared.bin") == std::fs::read(&file).expect("read"),
        "stored object differs from the source"
    );

    // The third machine's copy differs in its last part, which nobody had
    // sent: it completes the upload with its own file; the second refuses
    // to call that its upload.
    use std::os::unix::fs::FileExt;
    let other = tmp.path().join("other.bin");
    std::fs::copy(&file, &other).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&other)
        .and_then(|f| f.write_all_at(&[0x5A; 4096], (29 << 20) as u64))
        .expect("edit the last part");
    let tmp2 = tmp.path().join("again");
    std::fs::create_dir(&tmp2).expect("mkdir");
    let dest = format!("s3://{}/differs/shared.bin", garage.bucket);
    let out = resumed_while_another_completes(&garage, &tmp2, &file, &other, &dest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: the upload to {dest} was completed or aborted by another process meanwhile",
            file.display()
        )) && stderr.contains("does not hold this file now"),
        "{stderr}"
    );
    assert!(
        garage.get("differs/shared.bin") == std::fs::read(&other).expect("read"),
        "the object is not the completing machine's file"
    );
}

#[test]
fn an_upload_another_tool_started_without_checksums_is_proven_by_md5_etags() {
    let garage = Garage::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("tool.bin");
    write_random(&file, 23 << 20);
    let bytes = std::fs::read(&file).expect("read");
    let part = |n: usize| bytes[(n - 1) * (5 << 20)..n * (5 << 20)].to_vec();
    garage.start_upload_without_checksums("tool/tool.bin", &[part(1), part(2)]);

    let dest = format!("s3://{}/tool/tool.bin", garage.bucket);
    let o = run(upload(
        &garage,
        tmp.path(),
        &[file.to_str().expect("utf8"), &dest, "--part-size", "5MiB"],
    )
    .args(["--progress", "json", "-v"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let ev = events(&o.stdout);
    assert_eq!(the_event(&ev, "initialized")["parts_done"], 2, "{stderr}");
    let mut sent: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "part_done")
        .map(|e| e["part"].as_u64().expect("part"))
        .collect();
    sent.sort_unstable();
    assert_eq!(sent, [3, 4, 5], "only the parts the server lacks are sent");
    assert!(
        garage.get("tool/tool.bin") == bytes,
        "stored object differs from the source"
    );
}
