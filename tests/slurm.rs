//! The single-node Slurm cluster the scale-out tests run on: array tasks
//! see the variables `--shard auto` reads, one task can be cancelled
//! without touching its siblings, task exit codes are reported, and
//! nothing of the cluster outlives it. Needs root, like CI; fails without.

mod common;

use common::slurm::{processes_of, Slurm, Task};
use std::path::Path;
use std::time::{Duration, Instant};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// The array task ids and states of `tasks`, for comparing in one go.
fn summary(tasks: &[Task]) -> Vec<(Option<u32>, &str, i32, i32)> {
    tasks
        .iter()
        .map(|t| (t.array_task, t.state.as_str(), t.exit_code, t.signal))
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn array_tasks_see_their_index_min_and_count() {
    let slurm = Slurm::start();
    let out = tempfile::tempdir().expect("tempdir");
    let job = slurm.sbatch(
        &["--array=1-3"],
        &format!(
            "#!/bin/sh\n\
             echo \"$SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_MIN $SLURM_ARRAY_TASK_COUNT\" \
             > {}/task-$SLURM_ARRAY_TASK_ID\n",
            out.path().display()
        ),
    );
    let tasks = slurm.wait(job, JOB_TIMEOUT);
    assert_eq!(
        summary(&tasks),
        [
            (Some(1), "COMPLETED", 0, 0),
            (Some(2), "COMPLETED", 0, 0),
            (Some(3), "COMPLETED", 0, 0)
        ]
    );
    for (task, line) in [(1, "1 1 3\n"), (2, "2 1 3\n"), (3, "3 1 3\n")] {
        assert_eq!(read(&out.path().join(format!("task-{task}"))), line);
    }
}

#[test]
fn cancelling_a_running_task_ends_it_and_leaves_the_others_alone() {
    let slurm = Slurm::start();
    let out = tempfile::tempdir().expect("tempdir");
    // Task 1 runs until it is cancelled; tasks 2 and 3 wait for `go`,
    // which appears only after the cancel, so on two or more CPUs task 2
    // is running beside task 1 when that is cancelled.
    let job = slurm.sbatch(
        &["--array=1-3"],
        &format!(
            "#!/bin/sh\n\
             cd {}\n\
             if [ \"$SLURM_ARRAY_TASK_ID\" = 1 ]; then\n\
               echo $$ > pid.tmp && mv pid.tmp pid\n\
               exec sleep 600\n\
             fi\n\
             while [ ! -e go ]; do sleep 0.1; done\n\
             echo done > done-$SLURM_ARRAY_TASK_ID\n",
            out.path().display()
        ),
    );

    let pid_file = out.path().join("pid");
    let deadline = Instant::now() + JOB_TIMEOUT;
    while !pid_file.exists() {
        assert!(
            Instant::now() < deadline,
            "task 1 did not start: {:#?}\n{}",
            slurm.tasks(job),
            slurm.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid: i32 = read(&pid_file).trim().parse().expect("pid");
    let running = slurm.tasks(job);
    assert_eq!(running[0].array_task, Some(1));
    assert_eq!(running[0].state, "RUNNING");

    slurm.scancel(&format!("{job}_1"));
    std::fs::write(out.path().join("go"), "").expect("write go");
    let tasks = slurm.wait(job, JOB_TIMEOUT);

    assert_eq!(
        summary(&tasks),
        [
            (Some(1), "CANCELLED", 0, libc::SIGTERM),
            (Some(2), "COMPLETED", 0, 0),
            (Some(3), "COMPLETED", 0, 0)
        ]
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the cancelled task's sleep (pid {pid}) still runs"
    );
    assert_eq!(read(&out.path().join("done-2")), "done\n");
    assert_eq!(read(&out.path().join("done-3")), "done\n");

    let conf = slurm.conf().to_path_buf();
    drop(slurm);
    assert_eq!(
        processes_of(&conf),
        Vec::<i32>::new(),
        "processes of the cluster outlived it"
    );
}

#[test]
fn exit_codes_of_tasks_are_reported() {
    let slurm = Slurm::start();
    let job = slurm.sbatch(
        &["--array=1-2"],
        "#!/bin/sh\nexit $(( (SLURM_ARRAY_TASK_ID - 1) * 3 ))\n",
    );
    let tasks = slurm.wait(job, JOB_TIMEOUT);
    assert_eq!(
        summary(&tasks),
        [(Some(1), "COMPLETED", 0, 0), (Some(2), "FAILED", 3, 0)]
    );
}
