//! Running `transcode-hls` over a batch of inputs.
//!
//! Inputs run one after another (each already uses every core). A failed
//! input is reported and remembered; the batch goes on and the exit code
//! says so at the end. An interrupt stops the batch with the checkpoint of
//! the current input kept.

use super::settings::TranscodeRun;
use super::Outcome;
use vidpipe::hls::{self, HlsError, Job};
use vidpipe::inputs::expand;
use vidpipe::progress::{Event, Reporter};
use vidpipe::storage::LocalDir;
use vidpipe::CancelFlag;

/// Transcodes every input of `run`.
pub fn run(
    run: &TranscodeRun,
    reporter: &dyn Reporter,
    cancel: &CancelFlag,
    chatty: bool,
) -> Outcome {
    let (mut items, problems) = expand(&run.inputs);
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
    let dest = LocalDir::new(&run.output);
    for item in &items {
        let job = Job {
            input: item.source.clone(),
            prefix: format!("{}/", item.stem),
            state_dir: run.output.join(&item.stem),
            identity: item.identity.clone(),
        };
        match hls::transcode(&job, &dest, &run.settings, reporter, cancel) {
            Ok(published) => {
                if chatty {
                    eprintln!("published {} -> {}", item.source, published.master);
                }
            }
            Err(HlsError::Interrupted) => {
                eprintln!(
                    "interrupted: {} is checkpointed in {}; run the same command again to resume",
                    item.source,
                    job.state_dir.join(".vidpipe").display()
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

fn fail(reporter: &dyn Reporter, input: &str, message: &str) {
    eprintln!("error: {input}: {message}");
    reporter.report(Event::Error {
        input: input.to_string(),
        message: message.to_string(),
    });
}
