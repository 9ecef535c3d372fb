//! A real single-node Slurm cluster for tests: Debian's `munged`,
//! `slurmctld` and `slurmd`, started as root in a temp dir and stopped on
//! drop. Fails loudly, with the daemons' logs, when it cannot come up.
//!
//! Nothing system-wide is used: munged gets its own key, socket, pid, log
//! and seed files; `slurm.conf` points Slurm at that socket
//! (`AuthInfo=socket=…`) and keeps state, spool, pid and log files in the
//! temp dir; the ports are free ones and the cluster and node names are
//! unique (the node's `NodeHostname` is this host's short name, its CPUs
//! and memory what `slurmd -C` detects), so several test binaries can run
//! clusters side by side. Every
//! Slurm command this module runs, and every job (through
//! `--export=ALL`), has `SLURM_CONF` set to this cluster's `slurm.conf`.
//!
//! Accounting is off, so `sacct` is not available. The state and exit code
//! of each task come from `scontrol show job`, which keeps a finished job's
//! record for `MinJobAge` seconds (set to an hour here, far longer than any
//! test waits).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`Slurm::start`] waits for the node to be idle.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Job states after which a task never runs again.
const FINAL_STATES: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
];

/// A running single-node cluster with one partition, `test`.
pub struct Slurm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// The node's name in this cluster (unique per instance).
    pub node: String,
    munged: Child,
    slurmctld: Child,
    slurmd: Child,
    scripts: AtomicUsize,
}

/// One task of a job as `scontrol show job` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The Slurm job id of this task's own record.
    pub job_id: u32,
    /// `SLURM_ARRAY_TASK_ID`, for an array task.
    pub array_task: Option<u32>,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, …
    pub state: String,
    /// The batch script's exit status (0 when killed by a signal).
    pub exit_code: i32,
    /// The signal that ended the batch script, 0 when none did.
    pub signal: i32,
}

impl Task {
    /// Whether the task has ended for good.
    pub fn is_final(&self) -> bool {
        FINAL_STATES.contains(&self.state.as_str())
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A name no other cluster on this machine uses at the same time.
fn unique_name() -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "vp{}x{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The last `lines` lines of a file, or a note that it is missing.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("({e})"),
    }
}

/// Starts `program` in its own process group, stdout and stderr appended to
/// `stderr_log`, failing loudly when it is not installed.
fn spawn(program: &str, args: &[&OsStr], conf: &Path, stderr_log: &Path) -> Child {
    let log = File::create(stderr_log).expect("daemon stderr file");
    Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup stderr file"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program} ({e}); run `bash scripts/setup --test`, which installs \
                 Slurm and munge"
            )
        })
}

/// `slurmd -C`: this host's short name and its hardware line
/// (`CPUs=… Boards=… … RealMemory=…`), exactly as slurmd will detect it.
fn detected_hardware() -> (String, String) {
    let out = Command::new("slurmd")
        .arg("-C")
        .env_remove("SLURM_CONF")
        .output()
        .unwrap_or_else(|e| panic!("cannot run slurmd -C ({e}); run `bash scripts/setup --test`"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("NodeName="))
        .unwrap_or_else(|| panic!("slurmd -C printed no node line:\n{text}"));
    let (name, hardware) = line["NodeName=".len()..]
        .split_once(' ')
        .unwrap_or_else(|| panic!("slurmd -C: unexpected line {line:?}"));
    (name.to_string(), hardware.to_string())
}

impl Slurm {
    /// Starts munged, slurmctld and slurmd and waits until the node is idle
    /// (at most 30 s). Needs root: fails, never skips, without it.
    pub fn start() -> Slurm {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the Slurm tests need root (they start munged, slurmctld and slurmd); run them as root"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        for sub in ["munge", "state", "spool", "jobs", "scripts"] {
            std::fs::create_dir(path(sub)).expect("mkdir");
        }

        // munged insists that its key belongs to the user it runs as and is
        // readable by nobody else.
        let mut key = [0u8; 128];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .expect("read /dev/urandom");
        std::fs::write(path("munge/munge.key"), key).expect("write munge key");
        std::fs::set_permissions(
            path("munge/munge.key"),
            std::fs::Permissions::from_mode(0o400),
        )
        .expect("chmod munge key");
        let socket = path("munge/munge.socket");

        let cluster = unique_name();
        let node = cluster.clone();
        let (hostname, hardware) = detected_hardware();
        let conf = path("slurm.conf");
        std::fs::write(path("plugstack.conf"), "").expect("write plugstack.conf");
        let d = |name: &str| path(name).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName={cluster}\n\
                 SlurmctldHost={hostname}(127.0.0.1)\n\
                 SlurmctldPort={ctld_port}\n\
                 SlurmdPort={d_port}\n\
                 AuthType=auth/munge\n\
                 CredType=cred/munge\n\
                 AuthInfo=socket={socket}\n\
                 SlurmUser=root\n\
                 SlurmdUser=root\n\
                 StateSaveLocation={state}\n\
                 SlurmdSpoolDir={spool}\n\
                 SlurmctldPidFile={ctld_pid}\n\
                 SlurmdPidFile={d_pid}\n\
                 SlurmctldLogFile={ctld_log}\n\
                 SlurmdLogFile={d_log}\n\
                 PlugStackConfig={plugstack}\n\
                 MailProg=/bin/true\n\
                 ProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\n\
                 SelectType=select/cons_tres\n\
                 SelectTypeParameters=CR_Core\n\
                 MpiDefault=none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 JobCompType=jobcomp/none\n\
                 ReturnToService=2\n\
                 SlurmctldTimeout=10\n\
                 SlurmdTimeout=10\n\
                 MessageTimeout=5\n\
                 KillWait=2\n\
                 Waittime=0\n\
                 InactiveLimit=0\n\
                 MinJobAge=3600\n\
                 NodeName={node} NodeHostname={hostname} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN\n\
                 PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
                ctld_port = free_port(),
                d_port = free_port(),
                socket = socket.display(),
                state = d("state"),
                spool = d("spool"),
                ctld_pid = d("slurmctld.pid"),
                d_pid = d("slurmd.pid"),
                ctld_log = d("slurmctld.log"),
                d_log = d("slurmd.log"),
                plugstack = d("plugstack.conf"),
            ),
        )
        .expect("write slurm.conf");

        let munged = spawn(
            "munged",
            &[
                OsStr::new("--foreground"),
                OsStr::new("--force"),
                OsStr::new(&format!("--key-file={}", d("munge/munge.key"))),
                OsStr::new(&format!("--socket={}", socket.display())),
                OsStr::new(&format!("--pid-file={}", d("munge/munged.pid"))),
                OsStr::new(&format!("--log-file={}", d("munge/munged.log"))),
                OsStr::new(&format!("--seed-file={}", d("munge/munged.seed"))),
            ],
            &conf,
            &path("munged.stderr"),
        );
        let conf_arg = [OsStr::new("-D"), OsStr::new("-f"), conf.as_os_str()];
        let slurmctld = spawn("slurmctld", &conf_arg, &conf, &path("slurmctld.stderr"));
        let slurmd = spawn(
            "slurmd",
            &[&conf_arg[..], &[OsStr::new("-N"), OsStr::new(&node)]].concat(),
            &conf,
            &path("slurmd.stderr"),
        );
        let mut slurm = Slurm {
            dir,
            conf,
            node,
            munged,
            slurmctld,
            slurmd,
            scripts: AtomicUsize::new(0),
        };
        slurm.wait_idle();
        slurm
    }

    /// Polls `sinfo` until the node is idle; fails with the logs when a
    /// daemon exits or 30 s pass.
    fn wait_idle(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self
                .command("sinfo")
                .args(["--noheader", "--nodes", &self.node, "--format=%T"])
                .output()
                .expect("run sinfo");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "idle" {
                return;
            }
            let exited = [
                ("munged", &mut self.munged),
                ("slurmctld", &mut self.slurmctld),
                ("slurmd", &mut self.slurmd),
            ]
            .into_iter()
            .find_map(|(name, child)| Some((name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!(
                    "{name} exited ({status}) while the cluster started\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the Slurm node was not idle after {START_TIMEOUT:?} (sinfo: {state:?}, {})\n{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The tails of the daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        let path = |name: &str| self.dir.path().join(name);
        let mut out = String::new();
        for (name, log, stderr) in [
            ("munged", "munge/munged.log", "munged.stderr"),
            ("slurmctld", "slurmctld.log", "slurmctld.stderr"),
            ("slurmd", "slurmd.log", "slurmd.stderr"),
        ] {
            // The daemons write to their log file once they have read the
            // configuration, and to stderr before (and, in the foreground,
            // also after) that.
            let file = if std::fs::metadata(path(log)).is_ok_and(|m| m.len() > 0) {
                log
            } else {
                stderr
            };
            out.push_str(&format!(
                "--- {name} ({file}) ---\n{}\n",
                tail(&path(file), 40)
            ));
        }
        out
    }

    /// A command for a Slurm program of this cluster (`SLURM_CONF` set).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf)
            .current_dir(self.dir.path().join("jobs"));
        cmd
    }

    /// The path of `slurm.conf`, for processes that call Slurm themselves.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Submits `script` (a whole batch script, `#!` line first) with
    /// `sbatch --export=ALL` and `args` (e.g. `--array=1-3`), and returns
    /// the job id. The job's output goes to the temp dir unless `args` say
    /// otherwise.
    pub fn sbatch(&self, args: &[&str], script: &str) -> u32 {
        self.sbatch_with(args, script, |_| {})
    }

    /// [`sbatch`](Self::sbatch), with `configure` adding to the
    /// environment of `sbatch`, which the job inherits (e.g. Garage's
    /// credentials).
    pub fn sbatch_with(
        &self,
        args: &[&str],
        script: &str,
        configure: impl FnOnce(&mut Command),
    ) -> u32 {
        assert!(script.starts_with("#!"), "a batch script starts with #!");
        let n = self.scripts.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.path().join(format!("scripts/job{n}.sh"));
        std::fs::write(&file, script).expect("write batch script");
        let output = self.dir.path().join("jobs/%A_%a.out");
        let mut cmd = self.command("sbatch");
        cmd.arg("--parsable")
            .arg("--export=ALL")
            .arg(format!("--output={}", output.display()))
            .args(args)
            .arg(&file);
        configure(&mut cmd);
        let out = run(cmd);
        let text = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `ID` or `ID;CLUSTER`.
        text.trim()
            .split(';')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("sbatch printed no job id: {text:?}"))
    }

    /// The tasks of `job` as `scontrol show job` lists them now; an array's
    /// pending tasks may share one record, which is listed once per task.
    pub fn tasks(&self, job: u32) -> Vec<Task> {
        let mut cmd = self.command("scontrol");
        cmd.args(["--oneliner", "show", "job", &job.to_string()]);
        let out = run(cmd);
        let mut tasks: Vec<Task> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .flat_map(parse_record)
            .collect();
        tasks.sort_by_key(|t| (t.array_task, t.job_id));
        tasks
    }

    /// Waits for `job` like [`wait`](Self::wait) and asserts that every
    /// task completed with exit code 0 (else the daemons' logs are shown).
    pub fn wait_completed(&self, job: u32, timeout: Duration) -> Vec<Task> {
        let tasks = self.wait(job, timeout);
        for task in &tasks {
            assert_eq!(
                (task.state.as_str(), task.exit_code),
                ("COMPLETED", 0),
                "{task:?}\n{}",
                self.logs()
            );
        }
        tasks
    }

    /// Waits until every task of `job` has ended and returns them, ordered
    /// by array task id. Fails with the queue and logs after `timeout`.
    pub fn wait(&self, job: u32, timeout: Duration) -> Vec<Task> {
        let deadline = Instant::now() + timeout;
        loop {
            let tasks = self.tasks(job);
            if tasks.iter().all(Task::is_final) {
                return tasks;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} not finished after {timeout:?}: {tasks:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `scancel target`: a job id, or `JOB_TASK` for one array task.
    pub fn scancel(&self, target: &str) {
        let mut cmd = self.command("scancel");
        cmd.arg(target);
        run(cmd);
    }

    /// Cancels every job and waits (at most 15 s) until none is left
    /// unfinished; quiet, since it runs on drop.
    fn cancel_all(&self) {
        let _ = self
            .command("scancel")
            .arg("--me")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let busy = self
                .command("squeue")
                .args(["--noheader", "--format=%A"])
                .output()
                .map(|o| !o.status.success() || !o.stdout.is_empty())
                .unwrap_or(false);
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The processes whose environment holds `SLURM_CONF=conf`: the daemons
/// of the cluster with that `slurm.conf`, slurmd's step daemons and,
/// through `--export=ALL`, the jobs. Empty once the cluster is dropped.
pub fn processes_of(conf: &Path) -> Vec<i32> {
    let mut needle = b"SLURM_CONF=".to_vec();
    needle.extend_from_slice(conf.as_os_str().as_encoded_bytes());
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle))
        })
        .collect()
}

/// Runs `cmd` and returns its output; fails with its stderr unless it
/// succeeds.
fn run(mut cmd: Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The tasks of one `scontrol --oneliner show job` record.
fn parse_record(line: &str) -> Vec<Task> {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in scontrol record: {line}"))
    };
    let job_id = field("JobId").parse().expect("JobId is a number");
    let state = field("JobState").to_string();
    let (exit_code, signal) = field("ExitCode")
        .split_once(':')
        .and_then(|(c, s)| Some((c.parse().ok()?, s.parse().ok()?)))
        .unwrap_or_else(|| panic!("bad ExitCode in scontrol record: {line}"));
    let array_tasks = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ArrayTaskId="))
        .map(task_ids);
    let task = |array_task| Task {
        job_id,
        array_task,
        state: state.clone(),
        exit_code,
        signal,
    };
    match array_tasks {
        None => vec![task(None)],
        Some(ids) => ids.into_iter().map(|id| task(Some(id))).collect(),
    }
}

/// Expands an array task list such as `1-5:2,8%4` into its ids.
fn task_ids(list: &str) -> BTreeSet<u32> {
    let list = list.split('%').next().unwrap_or(list);
    let mut ids = BTreeSet::new();
    for part in list.split(',') {
        let (range, step) = part.split_once(':').unwrap_or((part, "1"));
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let number = |s: &str| -> u32 {
            s.parse()
                .unwrap_or_else(|_| panic!("bad array task list {list:?}"))
        };
        ids.extend((number(first)..=number(last)).step_by(number(step).max(1) as usize));
    }
    ids
}

/// Sends `signal` to the process group led by `child` and waits (at most
/// 5 s) for `child` to exit; true when it did.
fn stop_group(child: &mut Child, signal: i32) -> bool {
    // SAFETY: killpg only sends a signal; the group is the daemon's own,
    // created by `process_group(0)` at spawn.
    unsafe { libc::killpg(child.id() as i32, signal) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Slurm {
    fn drop(&mut self) {
        self.cancel_all();
        // slurmd before slurmctld before munged, which both need.
        for child in [&mut self.slurmd, &mut self.slurmctld, &mut self.munged] {
            if !stop_group(child, libc::SIGTERM) {
                stop_group(child, libc::SIGKILL);
            }
        }
        // Step daemons and jobs that survived the cancel: gone for good.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let strays = processes_of(&self.conf);
            if strays.is_empty() || Instant::now() > deadline {
                break;
            }
            eprintln!("slurm: killing processes left by the cluster: {strays:?}");
            for pid in strays {
                // SAFETY: sends a signal to a process of this cluster only.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
