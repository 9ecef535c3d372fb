//! Running `transcode-hls` over a batch of inputs.
//!
//! Inputs run one after another (each already uses every core). A failed
//! input is reported and remembered; the batch goes on and the exit code
//! says so at the end. An interrupt stops the batch with the checkpoint of
//! the current input kept.

use super::settings::TranscodeRun;
use super::{fail, Outcome};
use std::path::PathBuf;
use vidpipe::hls::{self, HlsError, Job};
use vidpipe::inputs::expand;
use vidpipe::progress::Reporter;
use vidpipe::storage::Location;
use vidpipe::CancelFlag;

/// Transcodes every input of `run`.
pub fn run(
    run: &TranscodeRun,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    chatty: bool,
) -> Outcome {
    let needs_s3 = matches!(run.output, Location::S3 { .. })
        || run.inputs.iter().any(|i| i.starts_with("s3://"));
    let session = match super::s3_session(needs_s3, &run.s3, reporter) {
        Ok(session) => session,
        Err(outcome) => return outcome,
    };
    let (mut items, problems) = expand(&run.inputs, session.as_deref());
    let mut failed = 0usize;
    for p in &problems {
        fail(reporter, &p.source, &p.reason);
        failed += 1;
    }
    if let Some(shard) = run.shard {
        items = items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shard.takes(*i))
            .map(|(_, item)| item)
            .collect();
    }
    if items.is_empty() && problems.is_empty() {
        let inputs = run.inputs.join(", ");
        fail(reporter, &inputs, "no video files found");
        return Outcome::SomeFailed;
    }
    let Some(dest) = super::destination(&run.output, session.as_ref()) else {
        fail(reporter, &run.output.to_string(), "no S3 connection");
        return Outcome::SomeFailed;
    };
    for item in &items {
        let job = Job {
            input: item.source.clone(),
            open: item.open.clone(),
            prefix: format!("{}/", item.stem),
            state_dir: state_dir(&run.output, &item.stem),
            identity: item.identity.clone(),
        };
        match hls::transcode(&job, dest.as_ref(), &run.settings, reporter, cancel) {
            Ok(published) => {
                if chatty {
                    eprintln!("published {} -> {}", item.source, published.master);
                }
                if let (true, Some((bucket, key)), Some(session)) =
                    (run.delete_source, &item.object, &session)
                {
                    match session.delete(bucket, key) {
                        Ok(()) if chatty => eprintln!("deleted {}", item.source),
                        Ok(()) => {}
                        Err(e) => {
                            fail(
                                reporter,
                                &item.source,
                                &format!("published, but cannot delete the source: {e}"),
                            );
                            failed += 1;
                        }
                    }
                }
            }
            Err(HlsError::Interrupted) => {
                eprintln!(
                    "interrupted: {} is checkpointed in {}; run the same command again to resume",
                    item.source,
                    job.state_dir.display()
                );
                return Outcome::Interrupted;
            }
            Err(e) => {
                fail(reporter, &item.source, &e.to_string());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}

/// An input's state directory (its checkpoint): see [`vidpipe::state::StateDirs`].
pub(super) fn state_dir(output: &Location, stem: &str) -> PathBuf {
    vidpipe::state::StateDirs::new(super::state_root())
        .for_output(output)
        .input_dir(stem)
}
