//! `transcribe` end to end on real speech: recorded speech with known
//! transcripts (Debian's pocketsphinx-testdata) scored against the ffmpeg
//! program's `asr` filter run once over the whole file with the same model
//! (an independent peer); espeak-ng sentences placed at known times over
//! background sound (cue times, and the same words whatever the chunk
//! length); a video without audio; and external engines as commands
//! (shifted cues, a failing and a hanging engine, Ctrl-C); and `--follow`
//! on an MPEG-TS file growing a second a second, read at the same time by
//! `captions --follow`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MODEL: &str = "/usr/share/pocketsphinx/model/en-us";
const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

fn ffmpeg(args: &[&str]) {
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args));
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn transcribe(input: &Path, out: &Path, extra: &[&str]) -> Output {
    run(vidpipe()
        .arg("transcribe")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--progress", "json"])
        .args(extra))
}

/// A JSON transcript as (start, end, text) in seconds.
fn json_cues(path: &Path) -> Vec<(f64, f64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let cues: Vec<serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?} is not JSON: {e}"));
    cues.iter()
        .map(|c| {
            (
                c["start"].as_f64().expect("start"),
                c["end"].as_f64().expect("end"),
                c["text"].as_str().expect("text").to_string(),
            )
        })
        .collect()
}

/// The words of an SRT transcript's cue text.
fn srt_words(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .filter(|l| !l.contains("-->") && l.parse::<u64>().is_err())
        .flat_map(|l| l.split_whitespace().map(str::to_lowercase))
        .collect()
}

/// Word error rate of `hypothesis` against `reference`: word-level edit
/// distance over the reference's length.
fn wer(reference: &[String], hypothesis: &[String]) -> f64 {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous + usize::from(r != h);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

/// The librivox recordings joined with a second of silence between them
/// and two at the end, and their transcript.
fn librivox(dir: &Path) -> (PathBuf, Vec<String>) {
    let ids: Vec<String> = std::fs::read_to_string(Path::new(LIBRIVOX).join("fileids"))
        .expect("pocketsphinx-testdata is installed (scripts/setup --test)")
        .lines()
        .map(str::to_string)
        .collect();
    let transcription =
        std::fs::read_to_string(Path::new(LIBRIVOX).join("transcription")).expect("transcription");
    let reference: Vec<String> = transcription
        .split_whitespace()
        .filter(|w| !w.starts_with('<') && !w.starts_with('('))
        .map(str::to_string)
        .collect();
    let mut args: Vec<String> = Vec::new();
    let mut graph = String::new();
    for (i, id) in ids.iter().enumerate() {
        args.extend(["-i".into(), format!("{LIBRIVOX}/{id}.wav")]);
        let pad = if i + 1 == ids.len() { 2 } else { 1 };
        graph.push_str(&format!("[{i}]apad=pad_dur={pad}[p{i}];"));
    }
    for i in 0..ids.len() {
        graph.push_str(&format!("[p{i}]"));
    }
    graph.push_str(&format!("concat=n={}:v=0:a=1", ids.len()));
    let path = dir.join("librivox.wav");
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["-filter_complex", &graph, "-ar", "16000", "-ac", "1"]);
    let out = path.to_string_lossy().into_owned();
    all.push(&out);
    ffmpeg(&all);
    (path, reference)
}

/// What the ffmpeg program's `asr` filter recognises in `input`, run once
/// over the whole file with the default model.
fn ffmpeg_asr(input: &Path, dir: &Path) -> Vec<String> {
    let texts = dir.join("asr.txt");
    let filter = format!(
        "asr=hmm={MODEL}/en-us:lm={MODEL}/en-us.lm.bin:dict={MODEL}/cmudict-en-us.dict,\
         ametadata=mode=print:key=lavfi.asr.text:file={}",
        texts.display()
    );
    ffmpeg(&[
        "-i",
        &input.to_string_lossy(),
        "-af",
        &filter,
        "-f",
        "null",
        "-",
    ]);
    std::fs::read_to_string(&texts)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("lavfi.asr.text="))
        .flat_map(|l| l.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn recorded_speech_is_recognised_as_well_as_pocketsphinx_over_the_whole_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (audio, reference) = librivox(dir.path());
    let out = dir.path().join("librivox.srt");
    let o = transcribe(&audio, &out, &["--jobs", "2"]);
    ok(&o);
    let ours = wer(&reference, &srt_words(&out));
    let peer = wer(&reference, &ffmpeg_asr(&audio, dir.path()));
    println!(
        "librivox WER: vidpipe {:.1}%, ffmpeg asr over the whole file {:.1}%",
        ours * 100.0,
        peer * 100.0
    );
    assert!(
        ours <= peer + 0.05,
        "vidpipe's WER {ours:.3} is more than 5 points above PocketSphinx's own {peer:.3}"
    );
    let chunks: Vec<_> = events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "chunk_transcribed")
        .collect();
    assert!(
        chunks.len() >= 2,
        "the 31 s file is cut into 30 s chunks: {chunks:?}"
    );
}

/// Where speech starts in a WAV file espeak-ng wrote (seconds): the first
/// sample above a small fraction of full scale.
fn speech_onset(wav: &Path) -> f64 {
    let bytes = std::fs::read(wav).expect("read wav");
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let first = bytes[data..]
        .chunks_exact(2)
        .position(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 1000)
        .expect("espeak-ng wrote sound");
    first as f64 / f64::from(rate)
}

const SENTENCES: [(&str, f64); 5] = [
    ("the weather is nice today", 2.0),
    ("we will meet at the station at noon", 9.0),
    ("please close the door when you leave", 16.5),
    ("my brother bought a new car", 24.0),
    ("the children are playing in the garden", 31.0),
];

/// A 38 s video whose sound is quiet pink noise with the sentences spoken
/// over it at their times; returns the clip and when each sentence's
/// speech starts.
fn spoken_clip(dir: &Path) -> (PathBuf, Vec<f64>) {
    let mut args: Vec<String> = vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "testsrc2=size=320x240:rate=25:duration=38".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "anoisesrc=color=pink:amplitude=0.01:sample_rate=22050:duration=38".into(),
    ];
    let mut graph = String::new();
    let mut onsets = Vec::new();
    for (i, (text, at)) in SENTENCES.iter().enumerate() {
        let wav = dir.join(format!("s{i}.wav"));
        let out = run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-w"])
            .arg(&wav)
            .arg(text));
        assert!(out.status.success(), "espeak-ng: {out:?}");
        onsets.push(at + speech_onset(&wav));
        args.extend(["-i".into(), wav.to_string_lossy().into_owned()]);
        let ms = (at * 1000.0) as u64;
        graph.push_str(&format!("[{}]adelay={ms}:all=1[d{i}];", i + 2));
    }
    graph.push_str("[1]");
    for i in 0..SENTENCES.len() {
        graph.push_str(&format!("[d{i}]"));
    }
    graph.push_str(&format!(
        "amix=inputs={}:duration=first:normalize=0[a]",
        SENTENCES.len() + 1
    ));
    let clip = dir.join("spoken.mp4");
    args.extend(
        [
            "-filter_complex",
            &graph,
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
        ]
        .map(String::from),
    );
    args.push(clip.to_string_lossy().into_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(&refs);
    (clip, onsets)
}

#[test]
fn sentences_get_cues_where_they_are_spoken_whatever_the_chunk_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, onsets) = spoken_clip(dir.path());
    let mut words_by_chunk = Vec::new();
    for chunk in ["5s", "60s"] {
        let out = dir.path().join(format!("spoken-{chunk}.json"));
        let o = transcribe(&clip, &out, &["--chunk", chunk]);
        ok(&o);
        let cues = json_cues(&out);
        println!("--chunk {chunk}: {cues:?}");
        for (i, onset) in onsets.iter().enumerate() {
            let next = onsets.get(i + 1).copied().unwrap_or(f64::MAX);
            let first = cues
                .iter()
                .find(|(start, end, _)| *end > onset - 0.5 && *start < next)
                .unwrap_or_else(|| panic!("no cue for sentence {i} at {onset:.2}s: {cues:?}"));
            assert!(
                (first.0 - onset).abs() <= 0.5,
                "--chunk {chunk}: sentence {i} starts at {onset:.2}s, its first cue at {:.2}s",
                first.0
            );
        }
        let words: Vec<String> = cues
            .iter()
            .flat_map(|(_, _, t)| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        words_by_chunk.push(words);
    }
    assert_eq!(
        words_by_chunk[0], words_by_chunk[1],
        "--chunk 5s and --chunk 60s recognise different words"
    );
}

#[test]
fn a_video_without_audio_fails_alone_and_the_others_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = ClipSpec::new(160, 120, 2.0);
    spec.audio = None;
    let silent = make_clip(dir.path(), "silent.mp4", &spec);
    let (speech, _) = librivox(dir.path());
    let out = dir.path().join("out");
    let o = run(vidpipe()
        .arg("transcribe")
        .arg(&silent)
        .arg(&speech)
        .arg("-o")
        .arg(&out)
        .args(["--progress", "json"]));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let errors: Vec<_> = events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        errors[0]["input"]
            .as_str()
            .is_some_and(|i| i.ends_with("silent.mp4"))
            && message.contains("no audio"),
        "{errors:?}"
    );
    assert!(!out.join("silent.en.srt").exists());
    assert!(!srt_words(&out.join("librivox.en.srt")).is_empty());
}

/// A test engine in Python: writes one SRT cue, "chunk N", from 0.25 s
/// to the end of the chunk's audio. On the chunks whose number (from the
/// file name vidpipe gives `{in}`) meets the Python condition `when`, it
/// does what `how` says: `fail` exits 3, `hang` sleeps (in a child, as
/// engines that start helpers do), writing its pid and its child's pid to
/// a file in `DIR/pids` first.
fn engine(dir: &Path, misbehave: Option<(&str, &str)>) -> String {
    let script = dir.join("engine.py");
    let (when, how) = misbehave.unwrap_or(("False", "none"));
    std::fs::write(
        &script,
        format!(
            r#"import os, re, subprocess, sys, wave
src, out = sys.argv[1], sys.argv[2]
number = int(re.search(r"chunk-(\d+)", src).group(1))
if {when}:
    if "{how}" == "fail":
        print("model file is corrupt", file=sys.stderr)
        sys.exit(3)
    if "{how}" == "hang":
        child = subprocess.Popen(["sleep", "600"])
        with open(os.path.join("{pids}", str(os.getpid())), "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        child.wait()
with wave.open(src) as w:
    seconds = w.getnframes() / w.getframerate()
def stamp(s):
    ms = int(round(s * 1000))
    return f"{{ms // 3600000:02}}:{{ms // 60000 % 60:02}}:{{ms // 1000 % 60:02}},{{ms % 1000:03}}"
with open(out, "w") as f:
    f.write(f"1\n{{stamp(0.25)}} --> {{stamp(seconds)}}\nchunk {{number}}\n\n")
"#,
            pids = dir.join("pids").display(),
        ),
    )
    .expect("write engine");
    std::fs::create_dir_all(dir.join("pids")).expect("pids dir");
    format!("python3 {} {{in}} {{out}}.srt", script.display())
}

fn command_run(input: &Path, out: &Path, template: &str, extra: &[&str]) -> Output {
    transcribe(
        input,
        out,
        &[&["--engine", "command", "--asr-cmd", template][..], extra].concat(),
    )
}

fn chunk_spans(o: &Output) -> Vec<(f64, f64)> {
    events(&o.stdout)
        .into_iter()
        .filter(|e| e["event"] == "chunk_transcribed")
        .map(|e| {
            (
                e["start"].as_f64().expect("start"),
                e["end"].as_f64().expect("end"),
            )
        })
        .collect()
}

#[test]
fn an_engine_command_gets_each_chunk_and_its_cues_are_shifted_into_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (audio, _) = librivox(dir.path());
    let out = dir.path().join("cmd.json");
    let o = command_run(&audio, &out, &engine(dir.path(), None), &["--chunk", "8s"]);
    ok(&o);
    let spans = chunk_spans(&o);
    let cues = json_cues(&out);
    assert!(spans.len() >= 4, "{spans:?}");
    assert_eq!(cues.len(), spans.len(), "{cues:?}");
    for (i, ((start, end), cue)) in spans.iter().zip(&cues).enumerate() {
        assert_eq!(cue.2, format!("chunk {i}"));
        assert!(
            (cue.0 - (start + 0.25)).abs() < 0.002,
            "{cue:?} in {start}..{end}"
        );
        assert!((cue.1 - end).abs() < 0.002, "{cue:?} in {start}..{end}");
    }
}

#[test]
fn a_failing_or_hanging_engine_leaves_its_chunk_empty_and_the_rest_goes_on() {
    for (how, extra) in [("fail", vec![]), ("hang", vec!["--asr-timeout", "2s"])] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (audio, _) = librivox(dir.path());
        let out = dir.path().join("cmd.srt");
        let mut args = vec!["--chunk", "8s"];
        args.extend(extra);
        let o = command_run(
            &audio,
            &out,
            &engine(dir.path(), Some(("number == 1", how))),
            &args,
        );
        ok(&o);
        let spans = chunk_spans(&o);
        let words = srt_words(&out).join(" ");
        for i in 0..spans.len() {
            assert_eq!(
                words.contains(&format!("chunk {i}")),
                i != 1,
                "{how}: chunk {i}: {words}"
            );
        }
        let warnings: Vec<String> = events(&o.stdout)
            .into_iter()
            .filter(|e| e["event"] == "warning")
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect();
        let (start, end) = spans[1];
        let stamp = |s: f64| {
            let ms = (s * 1000.0).round() as u64;
            format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
        };
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&stamp(start)) && w.contains(&stamp(end))),
            "{how}: no warning naming {}..{}: {warnings:?}",
            stamp(start),
            stamp(end)
        );
        let why = if how == "fail" {
            "model file is corrupt"
        } else {
            "did not finish"
        };
        assert!(
            warnings.iter().any(|w| w.contains(why)),
            "{how}: {warnings:?}"
        );
    }
}

/// Whether process `pid` is gone (or a zombie waiting for its reaper).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn ctrl_c_stops_the_engines_and_keeps_what_was_recognised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (audio, _) = librivox(dir.path());
    let out = dir.path().join("cmd.srt");
    // Chunk 0 is recognised, every later one hangs.
    let template = engine(dir.path(), Some(("number >= 1", "hang")));
    let mut child = vidpipe()
        .arg("transcribe")
        .arg(&audio)
        .arg("-o")
        .arg(&out)
        .args(["--progress", "json", "--chunk", "8s", "--jobs", "2"])
        .args(["--engine", "command", "--asr-cmd", &template])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vidpipe");
    // Wait until chunk 0 is reported and an engine hangs on a later one.
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first_chunk = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("\"chunk_transcribed\"") && l.contains("\"index\":0,"));
    assert!(
        first_chunk.is_some(),
        "vidpipe ended before chunk 0 was reported"
    );
    let pids = dir.path().join("pids");
    let started = loop {
        let hanging = std::fs::read_dir(&pids)
            .expect("pids dir")
            .filter_map(|e| e.ok())
            .find_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|text| text.contains(' '));
        if let Some(text) = hanging {
            break text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("vidpipe ended before any engine hung: {status}");
        }
        // Polling for the engine's pid file, the condition waited for.
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let o = child.wait_with_output().expect("vidpipe ends");
    assert_eq!(o.status.code(), Some(130), "{o:?}\n{rest:?}");
    for engine_pid in started.split_whitespace() {
        assert!(
            gone(engine_pid),
            "engine process {engine_pid} is still running"
        );
    }
    let words = srt_words(&out).join(" ");
    assert!(
        words.contains("chunk 0"),
        "what was recognised is kept: {words}"
    );
}

/// Files under `dir` (recursively) named like `captions-N.vtt` that hold
/// a cue.
fn published_cues(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "vtt"))
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("-->")))
        .count()
}

#[test]
fn follow_appends_cues_that_captions_publishes_while_the_recording_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (clip, _) = spoken_clip(dir.path());
    let ts = dir.path().join("spoken.ts");
    ffmpeg(&[
        "-i",
        &clip.to_string_lossy(),
        "-c",
        "copy",
        "-f",
        "mpegts",
        &ts.to_string_lossy(),
    ]);
    let bytes = std::fs::read(&ts).expect("read ts");
    // 38 slices of whole TS packets: about a second of the recording each.
    let slice = (bytes.len() / 38).div_ceil(188) * 188;
    let mut slices = bytes.chunks(slice);
    let growing = dir.path().join("live.ts");
    std::fs::write(&growing, slices.next().expect("first slice")).expect("write");
    let subs = dir.path().join("subs");
    let transcript = subs.join("live.en.srt");
    let transcribe = vidpipe()
        .arg("transcribe")
        .arg(&growing)
        .arg("-o")
        .arg(&subs)
        .args(["--follow", "--idle", "5s", "--progress", "none"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start transcribe");
    let hls = dir.path().join("hls");
    let mut captions: Option<std::process::Child> = None;
    let mut appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&growing)
        .expect("open growing file");
    let mut published_while_growing = 0;
    for piece in slices {
        // The recording's own pace: a second of it arrives every second.
        std::thread::sleep(std::time::Duration::from_secs(1));
        // Counted before each piece, so the last count is from before the
        // recording's end arrived.
        published_while_growing = published_cues(&hls);
        std::io::Write::write_all(&mut appended, piece).expect("append");
        if captions.is_none() && transcript.exists() {
            captions = Some(
                vidpipe()
                    .arg("captions")
                    .arg(format!("en={}", transcript.display()))
                    .arg("-o")
                    .arg(&hls)
                    .args(["--follow", "--interval", "0.5s", "--progress", "none"])
                    .spawn()
                    .expect("start captions"),
            );
        }
    }
    let o = transcribe.wait_with_output().expect("transcribe ends");
    assert!(o.status.success(), "transcribe: {o:?}");
    let mut captions = captions.expect("the transcript appeared while the file grew");
    let status = captions.wait().expect("captions ends");
    assert!(status.success(), "captions: {status}");
    assert!(
        published_while_growing > 0,
        "no WebVTT segment with a cue was published while the recording grew"
    );
    let words = srt_words(&transcript);
    assert!(
        words.len() >= 20,
        "the whole recording is transcribed: {words:?}"
    );
    let playlist = std::fs::read_to_string(hls.join("captions.m3u8")).expect("playlist");
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
}
